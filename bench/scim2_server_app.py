"""WSGI entry point serving python scim2-server for side-by-side benchmarks.

The same application as the `scim2-server` CLI (in-memory storage, static
bearer token, one tenant mounted under /TENANT/v2) but served by gunicorn's
threaded worker, which keeps HTTP/1.1 connections alive (the CLI's wsgiref
server speaks HTTP/1.0 and closes every connection). One worker process:
the storage is in memory, so more processes would each hold their own data.

Environment: SCIM2_BENCH_TOKEN (required), SCIM2_BENCH_TENANT (default "bench").
"""

import os

from scim2_models import ScimProvider

from scim2_server.applications.wsgi import TenantDispatcher
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.utils import load_default_resource_types
from scim2_server.utils import load_default_schemas
from scim2_server.utils import load_default_service_provider_config

TOKEN = os.environ["SCIM2_BENCH_TOKEN"]
TENANT = os.environ.get("SCIM2_BENCH_TENANT", "bench")

config = load_default_service_provider_config()
config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
provider = ScimProvider.from_discovery(
    load_default_schemas().values(), load_default_resource_types().values(), config=config
)
service = ScimService(provider, secret=os.environ.get("SCIM2_SERVER_SECRET") or TOKEN)
storage = InMemoryStorage()
tenant_app = BearerTokenApplication(storage, provider, service=service, bearer_tokens=[TOKEN])


def _factory(tenant: str):
    return tenant_app if tenant == TENANT else None


app = TenantDispatcher(_factory)
