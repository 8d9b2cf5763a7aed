//! A fresh PostgreSQL database per test: the server is `nexus-local`'s
//! (`NEXUS_TEST_DATABASE_URL`, else 127.0.0.1:5432, else a private cluster
//! for the test binary); the database gets a random name and is dropped by
//! its guard, whether the test passed or not.

use rand::RngCore;

/// NEXUS_TEST_DATABASE_URL, else 127.0.0.1:5432, else a private cluster for
/// this test binary (nexus-local).
pub fn base_url() -> String {
    nexus_local::test::database_url()
}

/// The base URL with another database name.
pub fn url_for(db: &str) -> String {
    let base = base_url();
    let (head, _) = base.rsplit_once('/').unwrap_or((&base, ""));
    format!("{head}/{db}")
}

pub async fn admin_client() -> tokio_postgres::Client {
    let url = base_url();
    let (client, conn) = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is unreachable at {url} ({e}); unset NEXUS_TEST_DATABASE_URL to let the \
             tests start a private server, or point it at a running one."
        ),
    };
    tokio::spawn(conn);
    client
}

/// A fresh empty database; returns its name.
pub async fn fresh_database() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    let name = format!("nexus_test_{}", hex::encode(b));
    admin_client().await.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    name
}

pub fn drop_database(name: String) {
    // Drop runs outside any runtime we may block: use a thread with its own.
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            if let Ok((c, conn)) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls).await
            {
                tokio::spawn(conn);
                let _ =
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            }
        });
    })
    .join();
}

/// A database dropped when the value is, failed test or not.
#[derive(Debug)]
pub struct Database(pub String);

impl Database {
    /// A fresh empty database.
    pub async fn fresh() -> Self {
        Self(fresh_database().await)
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    pub fn url(&self) -> String {
        url_for(&self.0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        drop_database(self.0.clone());
    }
}
