#!/usr/bin/env python3
"""Run scim2-tester (0.5.2) against a live SCIM server; exit 1 if any check failed.
usage: scim2tester-run.py --url URL [--token T | $SCIM_TOKEN] [--include-tags a,b] [--exclude-tags a,b]
       [--resource-types User,Group] [--json FILE|-] [-v] [--allow-deviation] [--list-tags]
SUCCESS/COMPLIANT/ACCEPTABLE=passed, SKIPPED=skipped, ERROR/CRITICAL(/DEVIATION)=failed."""
import argparse, json, os, sys
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server, get_all_available_tags

PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}
csv = lambda v: {x.strip() for x in v.split(",") if x.strip()} if v else None


def tag_matches(func_tags, filters):  # scim2-tester's rule: 'crud' matches 'crud:read'
    return any(f == t or (":" in t and f in t.split(":")) for f in filters for t in func_tags)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default=os.environ.get("SCIM_URL"))
    ap.add_argument("--token", default=os.environ.get("SCIM_TOKEN"))
    ap.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    ap.add_argument("--include-tags"); ap.add_argument("--exclude-tags"); ap.add_argument("--resource-types")
    ap.add_argument("--json", metavar="FILE"); ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--allow-deviation", action="store_true"); ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--timeout", type=float, default=30.0); ap.add_argument("--list-tags", action="store_true")
    a = ap.parse_args()
    if a.list_tags:
        print("\n".join(get_all_available_tags())); return 0
    if not a.url:
        ap.error("--url (or $SCIM_URL) is required")
    headers = {"Accept": "application/scim+json"}
    if a.token:
        headers["Authorization"] = f"Bearer {a.token}"
    for h in a.header:
        k, _, v = h.partition(":"); headers[k.strip()] = v.strip()
    scim = SyncSCIMClient(Client(base_url=a.url, headers=headers, verify=not a.no_verify, timeout=a.timeout))
    # scim2-tester bug: exclude_tags also drops the '*'-tagged discovery prerequisites (and with
    # them every CRUD/PATCH check), so exclusion is emulated as include = all tags - excluded.
    include, exclude = csv(a.include_tags), csv(a.exclude_tags)
    if exclude:
        include = {t for t in (include or get_all_available_tags()) if not tag_matches({t}, exclude)}
    results = check_server(scim, include_tags=include,
                           resource_types=sorted(csv(a.resource_types)) if a.resource_types else None)
    failed = {Status.ERROR, Status.CRITICAL} | (set() if a.allow_deviation else {Status.DEVIATION})
    n = {"passed": 0, "failed": 0, "skipped": 0}
    records = []
    for r in results:
        if exclude and r.status != Status.SKIPPED and "*" not in r.tags and tag_matches(r.tags, exclude):
            r.status, r.reason = Status.SKIPPED, f"excluded (was {r.status.name}: {r.reason})"
        key = "failed" if r.status in failed else "skipped" if r.status == Status.SKIPPED else "passed"
        n[key] += 1
        rt = f"[{r.resource_type}] " if r.resource_type else ""
        print(f"{r.status.name:<10} {rt}{r.title}: {(r.reason or '').replace(chr(10), ' | ')}".rstrip(": "))
        if a.verbose and key == "failed" and r.data is not None:
            print(f"           data: {r.data!r}"[:4000])
        records.append({"status": r.status.name, "title": r.title, "resource_type": r.resource_type,
                        "reason": r.reason, "tags": sorted(r.tags),
                        "data": repr(r.data)[:4000] if key == "failed" else None})
    if a.json:
        doc = json.dumps({"summary": n, "results": records}, indent=2)
        print(doc) if a.json == "-" else open(a.json, "w").write(doc)
    print(f"{n['passed']} passed, {n['failed']} failed" + (f", {n['skipped']} skipped" if n["skipped"] else ""))
    return 1 if n["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
