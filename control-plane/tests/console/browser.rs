//! Headless Chromium through WebDriver: each test starts its own
//! `chromedriver` on a free port (killed when the [`Browser`] is dropped)
//! and drives one session with fantoccini. Without Chromium a test is
//! skipped, except under `CI=true`, where that is a failure.
//!
//! `NEXUS_CONSOLE_SCREENSHOTS=DIR` saves the screenshots the tests take.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::rig::PATIENCE;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// At most this many browsers at once: the machines have two cores.
static BROWSERS: Semaphore = Semaphore::const_new(3);

pub struct Browser {
    pub client: Client,
    pub base: String,
    driver: Child,
    _permit: SemaphorePermit<'static>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn paths() -> Option<(String, String)> {
    let chromium = std::env::var("NEXUS_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    let driver = std::env::var("NEXUS_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
    let there = std::path::Path::new(&chromium).exists() && std::path::Path::new(&driver).exists();
    if there {
        return Some((chromium, driver));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true and Chromium is missing ({chromium}, {driver}): install chromium and chromium-driver"
        );
    }
    eprintln!(
        "skipping: Chromium or chromedriver missing ({chromium}, {driver}); CI fails instead"
    );
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// A browser session against `base`, or `None` (skip) without Chromium.
    pub async fn open(base: &str) -> Option<Browser> {
        Self::open_sized(base, 1280, 900).await
    }

    pub async fn open_sized(base: &str, width: u32, height: u32) -> Option<Browser> {
        let (chromium, driver_path) = paths()?;
        let permit = BROWSERS.acquire().await.unwrap();
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {driver_path}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         format!("--window-size={width},{height}")],
            }),
        );
        let deadline = Instant::now() + PATIENCE;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) => {
                    assert!(Instant::now() < deadline, "chromedriver at {url}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Some(Browser { client, base: base.to_owned(), driver, _permit: permit })
    }

    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no {css} on {}: {e}", self.url().await),
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.unwrap().is_empty()
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default()
    }

    /// Waits until the element's text contains `want`.
    pub async fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if got.contains(want) {
                return got;
            }
            assert!(Instant::now() < deadline, "{css} never showed {want:?}; last: {got:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in with `credential` and waits for the overview.
    pub async fn sign_in(&self, credential: &str) {
        self.goto("/console/sign-in").await;
        self.fill("#credential", credential).await;
        self.click("form button[type=submit]").await;
        self.wait_text("main h1", "Overview").await;
    }

    /// Waits until the page's JS ran (times converted, forms wired).
    pub async fn js_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ready = self
                .client
                .execute("return document.documentElement.dataset.js || ''", vec![])
                .await
                .unwrap();
            if ready == "ready" {
                return;
            }
            assert!(Instant::now() < deadline, "the console's JS did not run");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot as `DIR/name.png` when NEXUS_CONSOLE_SCREENSHOTS is set.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("NEXUS_CONSOLE_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
