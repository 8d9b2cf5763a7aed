//! Reloading the alias file: a change is picked up, a broken file is
//! refused and the previous state keeps serving.

use nexus_harness::{Options, YAML, get, spawn_edge, wait_until};

const ADDED: &str = "  - context: system
    alias: fresh
    canonical: https://api.nexus.com/v1/fresh
";

#[tokio::test]
async fn file_change_reloads_and_broken_file_is_refused() {
    let edge = spawn_edge(YAML, Options { auth: false, ..Options::default() }).await;
    let c = reqwest::Client::new();
    let url = |t: &str| edge.url(&format!("/api/aliases/resolve/{t}"));
    // Before: the context does not exist.
    assert_eq!(get(&c, &url("system/fresh"), None).await.0, 400);

    edge.write_file(&format!("{YAML}{ADDED}"));
    wait_until("new alias to resolve", || async {
        get(&c, &url("system/fresh"), None).await.0 == 200
    })
    .await;
    let (_, headers, _) = get(&c, &url("system/fresh"), None).await;
    assert_eq!(headers["x-nexus-version"], "2");
    assert_eq!(edge.app.state.version(), 2);
    assert_eq!(edge.app.metrics.reloads_ok.get(), 2);

    // A duplicate key and a bad name: both refused, the old state stays.
    for broken in [
        format!("{YAML}{ADDED}{ADDED}"),
        "aliases:\n  - context: frontend\n    alias: has space\n    canonical: https://x\n".into(),
    ] {
        let rejected = edge.app.metrics.reloads_rejected.get();
        edge.write_file(&broken);
        wait_until("broken file to be refused", || async {
            edge.app.metrics.reloads_rejected.get() > rejected
        })
        .await;
        assert_eq!(get(&c, &url("system/fresh"), None).await.0, 200);
        assert_eq!(get(&c, &url("frontend/user-profile"), None).await.0, 200);
        assert_eq!(edge.app.state.version(), 2);
    }
    let (_, _, status) = get(&c, &edge.url("/api/aliases/status"), None).await;
    assert_eq!(status["status"]["health"], "healthy");
}
