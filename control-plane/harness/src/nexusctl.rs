//! Runs the `nexusctl` binary the way an admin's shell would: a clean
//! environment holding only the URL and the credential. It is a blocking
//! child process, so it runs off the async runtime. For the control
//! plane's tests, which cargo builds `nexusctl` for.

use std::process::Output;

pub async fn nexusctl(url: String, token: &str, args: &[&str]) -> Output {
    let token = token.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::cargo_bin("nexusctl"))
            .env_clear()
            .env("NEXUS_URL", url)
            .env("NEXUS_TOKEN", token)
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}
