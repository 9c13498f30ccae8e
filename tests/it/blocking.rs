use crate::common::{index_of, TestAgent};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_blocking_get_wakes_on_its_key_and_not_on_others() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/watched", "1").await;
    let (index, _) = a.get_json("/v1/kv/watched").await;
    let waiter = a.watch(&format!("/v1/kv/watched?index={index}&wait=10s"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.put_ok("/v1/kv/other", "x").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "a write to another key woke the watcher"
    );
    a.put_ok("/v1/kv/watched", "2").await;
    let (new_index, body, elapsed) = waiter.await.unwrap();
    assert!(new_index > index);
    assert_eq!(body[0]["Value"], crate::common::b64("2"));
    assert!(elapsed < Duration::from_secs(5));
}

#[tokio::test]
async fn a_prefix_watch_wakes_for_keys_below_it() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/svc/a", "1").await;
    let resp = a.get("/v1/kv/svc/?recurse").await;
    let index = index_of(&resp);
    let waiter = a.watch(&format!("/v1/kv/svc/?recurse&index={index}&wait=10s"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.put_ok("/v1/kv/svcX", "no").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    a.put_ok("/v1/kv/svc/b", "2").await;
    let (_, body, _) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_wait_bounds_a_blocking_query() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/k", "1").await;
    let (index, _) = a.get_json("/v1/kv/k").await;
    let started = Instant::now();
    let resp = a.get(&format!("/v1/kv/k?index={index}&wait=300ms")).await;
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(index_of(&resp), index);
    // 300ms plus at most 1/16 jitter (and some scheduling slack).
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn an_index_ahead_of_the_store_waits_then_returns_the_current_index() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/k", "1").await;
    let (index, _) = a.get_json("/v1/kv/k").await;
    let started = Instant::now();
    let resp = a.get("/v1/kv/k?index=1000&wait=200ms").await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(index_of(&resp), index);
}

#[tokio::test]
async fn a_missing_key_blocks_until_it_is_created() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/unrelated", "1").await;
    let resp = a.get("/v1/kv/later").await;
    assert_eq!(resp.status(), 404);
    let index = index_of(&resp);
    let url = a.url(&format!("/v1/kv/later?index={index}&wait=10s"));
    let http = a.http.clone();
    let waiter = tokio::spawn(async move { http.get(url).send().await.unwrap().status() });
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.put_ok("/v1/kv/later", "now").await;
    let status = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn many_watchers_are_woken_together_and_then_released() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/fan", "0").await;
    let (index, _) = a.get_json("/v1/kv/fan").await;
    let mut waiters = Vec::new();
    for _ in 0..50 {
        let url = a.url(&format!("/v1/kv/fan?index={index}&wait=10s"));
        let http = a.http.clone();
        waiters.push(tokio::spawn(async move {
            index_of(&http.get(url).send().await.unwrap())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.put_ok("/v1/kv/fan", "1").await;
    for w in waiters {
        let idx = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(idx, index + 1);
    }
}
