use crate::common::TestAgent;

#[tokio::test]
async fn everything_written_comes_back_with_the_same_indexes() {
    let a = TestAgent::start().await;
    for i in 0..20 {
        a.put_ok(&format!("/v1/kv/r/{i}?flags={i}"), format!("value-{i}"))
            .await;
    }
    a.delete("/v1/kv/r/3").await;
    let (index_before, before) = a.get_json("/v1/kv/r/?recurse").await;
    let (keys_index_before, _) = a.get_json("/v1/kv/?keys").await;

    let a = a.restart().await;
    let (index_after, after) = a.get_json("/v1/kv/r/?recurse").await;
    assert_eq!(before, after);
    assert_eq!(index_before, index_after);
    let (keys_index_after, _) = a.get_json("/v1/kv/?keys").await;
    assert_eq!(keys_index_before, keys_index_after);

    // The index keeps climbing from where it was.
    a.put_ok("/v1/kv/after-restart", "v").await;
    let (_, entry) = a.get_json("/v1/kv/after-restart").await;
    assert_eq!(
        entry[0]["ModifyIndex"].as_u64().unwrap(),
        keys_index_after + 1
    );
}
