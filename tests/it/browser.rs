//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromedriver`), spoken to with reqwest: the portal tests click, type, draw and
//! take screenshots as a customer would. When the browser is missing, the suite
//! installs it with apt-get, saying so in one line.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs Chromium and its driver once per run when they are missing.
fn ensure_installed() -> anyhow::Result<()> {
    crate::tools::ensure(&crate::tools::CHROMIUM).map_err(|missing| anyhow!(missing))
}

/// Where the suite keeps its screenshots (and the README's copies come from).
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// One browser window.
pub struct Browser {
    client: reqwest::Client,
    driver_url: String,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// A WebDriver element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Starts chromedriver and a headless Chromium of its own profile, 1280×900.
    pub async fn start() -> anyhow::Result<Browser> {
        crate::support::install_tls_provider();
        ensure_installed()?;
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        // A process group of its own, so that dropping the browser ends Chromium
        // too: killing chromedriver alone left every Chromium it started running.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting chromedriver")?;
        let driver_url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client.get(format!("{driver_url}/status")).send().await {
                if response.status().is_success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir()?;
        let capabilities = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "prefs": {"intl.accept_languages": "de-DE,de"},
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                        "--lang=de-DE",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}
        });
        let answer: Value = client
            .post(format!("{driver_url}/session"))
            .json(&capabilities)
            .send()
            .await?
            .json()
            .await?;
        let session = answer["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no WebDriver session: {answer}"))?
            .to_string();
        Ok(Browser {
            client,
            driver_url,
            session,
            driver,
            _profile: profile,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/session/{}{path}", self.driver_url, self.session);
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await?.json().await?;
        if let Some(error) = answer["value"]["error"].as_str() {
            bail!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        Ok(answer["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({"url": url})).await.map(|_| ())
    }

    pub async fn url(&self) -> anyhow::Result<String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn title(&self) -> anyhow::Result<String> {
        Ok(self
            .get("/title")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The page's visible text.
    pub async fn text(&self) -> anyhow::Result<String> {
        let body = self.css("body").await?;
        self.text_of(&body).await
    }

    pub async fn text_of(&self, element: &Element) -> anyhow::Result<String> {
        Ok(self
            .get(&format!("/element/{}/text", element.0))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn set_size(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .map(|_| ())
    }

    async fn find(&self, using: &str, value: &str) -> anyhow::Result<Element> {
        let found = self
            .post("/element", json!({"using": using, "value": value}))
            .await
            .with_context(|| format!("no element {value}"))?;
        found[ELEMENT_KEY]
            .as_str()
            .map(|id| Element(id.to_string()))
            .ok_or_else(|| anyhow!("no element {value}"))
    }

    pub async fn css(&self, selector: &str) -> anyhow::Result<Element> {
        self.find("css selector", selector).await
    }

    pub async fn xpath(&self, xpath: &str) -> anyhow::Result<Element> {
        self.find("xpath", xpath).await
    }

    /// How many elements match a selector.
    pub async fn count(&self, selector: &str) -> anyhow::Result<usize> {
        let found = self
            .post(
                "/elements",
                json!({"using": "css selector", "value": selector}),
            )
            .await?;
        Ok(found.as_array().map(Vec::len).unwrap_or(0))
    }

    /// A button (or a link styled as one) by its visible text.
    pub async fn button(&self, text: &str) -> anyhow::Result<Element> {
        self.xpath(&format!(
            "//button[normalize-space()={q}] | //a[normalize-space()={q}] | //input[@type='submit' and @value={q}]",
            q = xpath_literal(text)
        ))
        .await
    }

    /// The control a `<label>` with this text names.
    pub async fn labelled(&self, label: &str) -> anyhow::Result<Element> {
        let label_element = self
            .xpath(&format!(
                "//label[normalize-space()={q} or starts-with(normalize-space(), {q2})]",
                q = xpath_literal(label),
                q2 = xpath_literal(&format!("{label} ("))
            ))
            .await?;
        let target = self
            .get(&format!("/element/{}/attribute/for", label_element.0))
            .await?;
        let id = target
            .as_str()
            .ok_or_else(|| anyhow!("label {label} names no control"))?;
        self.css(&format!("[id='{id}']")).await
    }

    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await
            .map(|_| ())
    }

    /// Clicks a button or link that leads to another page, and returns once that
    /// page has loaded. WebDriver's click does not always wait for a form's
    /// navigation, and reading the old page while it unloads fails as "stale".
    pub async fn click_button(&self, text: &str) -> anyhow::Result<()> {
        let button = self.button(text).await?;
        let old_page = self.css("html").await?;
        self.click(&button).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let gone = match self.get(&format!("/element/{}/name", old_page.0)).await {
                Ok(_) => false,
                Err(error) => error.to_string().contains("stale element"),
            };
            if gone {
                let state = self.script("return document.readyState;", vec![]).await;
                if matches!(state, Ok(Value::String(ref s)) if s == "complete") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("clicking {text} led to no new page");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn type_into(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({"text": text}),
        )
        .await
        .map(|_| ())
    }

    pub async fn fill(&self, label: &str, text: &str) -> anyhow::Result<()> {
        let element = self.labelled(label).await?;
        self.type_into(&element, text).await
    }

    pub async fn displayed(&self, element: &Element) -> anyhow::Result<bool> {
        Ok(self
            .get(&format!("/element/{}/displayed", element.0))
            .await?
            .as_bool()
            .unwrap_or(false))
    }

    /// Runs a script in the page; `arguments[0…]` are `args` (elements as references).
    pub async fn script(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    pub fn reference(element: &Element) -> Value {
        json!({ELEMENT_KEY: element.0})
    }

    /// The focused element's id.
    pub async fn focused_id(&self) -> anyhow::Result<String> {
        Ok(self
            .script(
                "return document.activeElement && document.activeElement.id || '';",
                vec![],
            )
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// A computed style property of an element.
    pub async fn style(&self, element: &Element, property: &str) -> anyhow::Result<String> {
        Ok(self
            .script(
                "return getComputedStyle(arguments[0]).getPropertyValue(arguments[1]);",
                vec![Self::reference(element), json!(property)],
            )
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Draws a stroke across `element` with a pointer of `kind` (`mouse`, `pen`,
    /// `touch`), through real pointer events.
    pub async fn draw(
        &self,
        element: &Element,
        kind: &str,
        points: &[(i64, i64)],
    ) -> anyhow::Result<()> {
        let Some(((x0, y0), rest)) = points.split_first() else {
            return Ok(());
        };
        let origin = json!({ELEMENT_KEY: element.0});
        let mut actions = vec![
            json!({"type": "pointerMove", "duration": 0, "origin": origin, "x": x0, "y": y0}),
            json!({"type": "pointerDown", "button": 0}),
        ];
        for (x, y) in rest {
            actions.push(
                json!({"type": "pointerMove", "duration": 30, "origin": origin, "x": x, "y": y}),
            );
        }
        actions.push(json!({"type": "pointerUp", "button": 0}));
        self.post(
            "/actions",
            json!({"actions": [{"type": "pointer", "id": format!("{kind}-1"),
                                "parameters": {"pointerType": kind}, "actions": actions}]}),
        )
        .await?;
        self.call(reqwest::Method::DELETE, "/actions", None).await?;
        Ok(())
    }

    /// Presses keys (WebDriver key codes, e.g. `\u{E004}` for Tab) one after another.
    pub async fn post_keys(&self, keys: &[&str]) -> anyhow::Result<()> {
        let mut actions = Vec::new();
        for key in keys {
            actions.push(json!({"type": "keyDown", "value": key}));
            actions.push(json!({"type": "keyUp", "value": key}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await?;
        Ok(())
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        use base64::Engine as _;
        let data = self.get("/screenshot").await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .context("screenshot is not base64")?;
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    /// A PNG of the whole page at `width` (as tall as the content).
    pub async fn full_page_screenshot(&self, name: &str, width: u32) -> anyhow::Result<PathBuf> {
        self.set_size(width, 900).await?;
        let height = self
            .script(
                "return Math.ceil(document.documentElement.scrollHeight);",
                vec![],
            )
            .await?
            .as_u64()
            .unwrap_or(900) as u32;
        self.set_size(width, height.clamp(400, 4000) + 140).await?;
        let path = self.screenshot(name).await?;
        self.set_size(1280, 900).await?;
        Ok(path)
    }

    /// Waits until the page's address contains `part`.
    pub async fn wait_for_url(&self, part: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await?;
            if url.contains(part) {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!("the browser stayed at {url}, not {part}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The cookies of the current page, by name.
    pub async fn cookie(&self, name: &str) -> anyhow::Result<Option<Value>> {
        let cookies = self.get("/cookie").await?;
        Ok(cookies
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name).cloned()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A string as an XPath literal, whatever quotes it holds.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|part| format!("'{part}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}
