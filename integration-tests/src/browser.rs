//! Headless Chromium (Debian's `chromium`) driven over the Chrome DevTools
//! Protocol: real page loads, real keyboard text and mouse clicks at an
//! element's position, screenshots. No WebDriver or Node needed: the
//! protocol is JSON over the WebSocket the browser opens.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A browser with one page.
pub struct Browser {
    child: tokio::process::Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium headless with a fresh profile.
    pub async fn launch() -> anyhow::Result<Self> {
        let profile = tempfile::tempdir()?;
        let mut child = tokio::process::Command::new("chromium")
            .args([
                "--headless=new",
                // Tests run as root in containers, where the sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1200,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("chromium: {e} (scripts/provision.sh installs it)"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let mut lines = BufReader::new(stderr).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    return Ok(url.trim().to_owned());
                }
            }
            anyhow::bail!("chromium exited before listening")
        })
        .await
        .map_err(|_| anyhow::anyhow!("chromium did not start within 30 s"))??;
        // Keep draining stderr so the browser never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        Ok(Self {
            child,
            ws,
            next_id: 0,
            session: None,
            _profile: profile,
        })
    }

    /// Sends one protocol command and waits for its answer.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.ws.send(Message::text(message.to_string())).await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .map_err(|_| anyhow::anyhow!("{method}: no answer within 30 s"))?
                .ok_or_else(|| anyhow::anyhow!("the browser closed the connection"))??;
            let Message::Text(text) = frame else { continue };
            let answer: Value = serde_json::from_str(&text)?;
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                anyhow::bail!("{method}: {error}");
            }
            return Ok(answer["result"].clone());
        }
    }

    /// Opens `url` in a new page and attaches to it.
    pub async fn open(&mut self, url: &str) -> anyhow::Result<()> {
        let target = self
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await?;
        self.session = attached["sessionId"].as_str().map(str::to_owned);
        self.call("Page.enable", json!({})).await?;
        self.call("Page.navigate", json!({ "url": url })).await?;
        self.wait_for("document.readyState === 'complete'").await
    }

    /// The value of a JavaScript expression (awaited when a promise).
    pub async fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            anyhow::bail!("{expression}: {exception}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Polls until `condition` (JavaScript) is true, for up to 20 s.
    pub async fn wait_for(&mut self, condition: &str) -> anyhow::Result<()> {
        for _ in 0..200 {
            if self.eval(condition).await? == json!(true) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = self
            .eval("document.getElementById('status')?.textContent ?? ''")
            .await
            .unwrap_or_default();
        anyhow::bail!("not true within 20 s: {condition} (page status: {status})")
    }

    /// Clicks the middle of the element `element` (a JavaScript expression)
    /// with the mouse, as a person would.
    pub async fn click(&mut self, element: &str) -> anyhow::Result<()> {
        let at = self
            .eval(&format!(
                "(() => {{ const e = {element}; e.scrollIntoView({{block: 'center'}}); \
                 const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ))
            .await?;
        let (x, y) = (at[0].as_f64().unwrap_or(0.0), at[1].as_f64().unwrap_or(0.0));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await?;
        }
        Ok(())
    }

    /// Focuses the field with id `id` and types `text` over what it holds.
    pub async fn type_into(&mut self, id: &str, text: &str) -> anyhow::Result<()> {
        self.click(&format!("document.getElementById('{id}')"))
            .await?;
        // Typed text replaces a selection, as after a triple click.
        self.eval(&format!("document.getElementById('{id}').select()"))
            .await?;
        self.call("Input.insertText", json!({ "text": text }))
            .await?;
        Ok(())
    }

    /// Saves a PNG of the page to `path`.
    pub async fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Ends the browser.
    pub async fn close(mut self) {
        let _ = self.call("Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Where tests leave artifacts (screenshots): `$CARGO_TARGET_DIR/test-artifacts`,
/// else `target/test-artifacts` in the workspace.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("test-artifacts")
}
