//! Hostile input that costs CPU: `?filter=` expressions built to be slow must not starve the
//! agent's other requests, and none may cost more than its budget.

use crate::common::{free_port, wait_ready};
use crate::network_faults::{addr, leader_latency, p90, LATENCY_MEASUREMENT};
use std::time::Duration;

/// The most expensive expression a client can build from regex terms: each `\w{200}x` compiles
/// to a program near the size limit, and twenty of them run against every service.
fn worst_filter() -> String {
    vec![r#"Service matches "\\w{200}x""#; 20].join(" or ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worst_filters_leave_status_leader_under_100ms() {
    let _alone = LATENCY_MEASUREMENT.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = crate::common::agent(&[
        "-data-dir",
        dir.path().join("data").to_str().unwrap(),
        "-http-port",
        &port.to_string(),
    ]);
    wait_ready(&base).await;
    let client = reqwest::Client::new();
    let services: Vec<_> = (0..1000)
        .map(|i| {
            serde_json::json!({"Name": format!("{}-{i}", "s".repeat(300)), "ID": format!("svc-{i}")})
        })
        .collect();
    for chunk in services.chunks(100) {
        let registers = chunk.iter().map(|s| {
            client
                .put(format!("{base}/v1/agent/service/register"))
                .json(s)
                .send()
        });
        for r in futures_util::future::join_all(registers).await {
            assert_eq!(r.unwrap().status(), 200);
        }
    }
    let url = format!("{base}/v1/agent/services");
    let filter = worst_filter();
    // Alone, the worst filter answers (its cost is within the budget).
    let r = client
        .get(&url)
        .query(&[("filter", &filter)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "{}");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, filter, stop) =
                (client.clone(), url.clone(), filter.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = client.get(&url).query(&[("filter", &filter)]).send().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for _ in 0..20 {
        latencies.push(leader_latency(&addr(&base)).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for a in attackers {
        a.await.unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        p90(latencies.clone()) < Duration::from_millis(100),
        "{latencies:?}"
    );
}
