//! A console session driven with reqwest (no browser): for what a browser
//! would not send, like a cross-site POST carrying the session's cookie.

use reqwest::redirect::Policy;

use crate::rig::System;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

pub struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Session {
    /// Signs in as a non-browser client does (no Origin header).
    pub async fn sign_in(sys: &System, credential: &str) -> Session {
        let http = client();
        let res = http
            .post(sys.url("/console/sign-in"))
            .form(&[("credential", credential)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "sign-in: {}", res.text().await.unwrap_or_default());
        let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        let cookie = set.split(';').next().unwrap().to_owned();
        Session { http, base: sys.url(""), cookie }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// The anti-forgery token the page at `path` carries.
    pub async fn csrf(&self, path: &str) -> String {
        let (status, page) = self.get(path).await;
        assert_eq!(status, 200, "{page}");
        let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        page[at..].split('"').next().unwrap().to_owned()
    }

    pub async fn post<V: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        form: &V,
        origin: Option<&str>,
    ) -> (u16, String) {
        let headers: Vec<(&str, &str)> = origin.map(|o| vec![("origin", o)]).unwrap_or_default();
        self.post_with(path, form, &headers).await
    }

    pub async fn post_with<V: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        form: &V,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
}
