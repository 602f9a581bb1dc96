//! Helpers of the validator's tests.

#![allow(dead_code)]

pub mod proxy;

use serde_json::Value;

/// Every user and group of an endpoint, as (kind, id, name, members),
/// sorted: what "the target holds exactly what it held before" compares.
pub async fn snapshot(base: &str, token: &str) -> Vec<String> {
    let client = scimitar_testkit::client();
    let mut out = Vec::new();
    for (endpoint, name) in [("Users", "userName"), ("Groups", "displayName")] {
        let mut start = 1;
        loop {
            let page: Value = client
                .get(format!("{base}/{endpoint}?startIndex={start}&count=100"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let rs = page["Resources"].as_array().cloned().unwrap_or_default();
            for r in &rs {
                let mut members: Vec<String> = r["members"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|x| x["value"].as_str().unwrap_or_default().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                members.sort();
                out.push(format!(
                    "{endpoint} {} {} {members:?} active={}",
                    r["id"].as_str().unwrap_or_default(),
                    r[name].as_str().unwrap_or_default(),
                    r["active"]
                ));
            }
            if rs.is_empty() {
                break;
            }
            start += rs.len();
        }
    }
    out.sort();
    out
}
