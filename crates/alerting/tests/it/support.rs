//! Real local servers for the tests: an SMTP server (plain or STARTTLS) and an HTTP
//! server standing in for the Slack webhook. Both listen on 127.0.0.1 on a port the
//! OS picks, and stop when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use recops_alerting::{AlertManager, Sleeper};
use recops_core::{FixedClock, Home};

/// A temp home with a config file and a fixed clock.
pub(crate) struct TestHome {
    _dir: tempfile::TempDir,
    pub(crate) home: Home,
    pub(crate) clock: FixedClock,
    pub(crate) sleeper: Arc<RecordingSleeper>,
}

impl TestHome {
    pub(crate) fn new(config_yaml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.config_dir()).unwrap();
        std::fs::write(home.alerts_config(), config_yaml).unwrap();
        TestHome {
            _dir: dir,
            home,
            clock: FixedClock::new(t0()),
            sleeper: Arc::new(RecordingSleeper::default()),
        }
    }

    /// A manager over this home, as a new job process would load it.
    pub(crate) fn manager(&self) -> AlertManager {
        AlertManager::builder(&self.home)
            .clock(self.clock.shared())
            .sleeper(self.sleeper.clone())
            .build()
            .unwrap()
    }

    /// The alerts log, with any file rotated away (at midnight) first.
    pub(crate) fn alerts_log(&self) -> String {
        let path = self.home.alerts_log();
        let mut files = recops_core::rotated_files(&path);
        files.reverse();
        files.push(path);
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }
}

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 8, 0, 0).unwrap()
}

/// Records the waits between retries instead of sleeping.
#[derive(Debug, Default)]
pub(crate) struct RecordingSleeper(pub(crate) Mutex<Vec<Duration>>);

impl Sleeper for RecordingSleeper {
    fn sleep(&self, d: Duration) {
        self.0.lock().unwrap().push(d);
    }
}

impl RecordingSleeper {
    pub(crate) fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

/// A port on 127.0.0.1 with nothing listening.
pub(crate) fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Lines of `log` that contain `needle`.
pub(crate) fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

// ---------------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------------

/// One message the SMTP server accepted.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) mail_from: String,
    pub(crate) rcpt_to: Vec<String>,
    pub(crate) data: String,
    /// (user, password) of the AUTH that preceded it, if any.
    pub(crate) auth: Option<(String, String)>,
    /// Whether the session was encrypted when the message was sent.
    pub(crate) encrypted: bool,
}

impl Mail {
    /// A header value (first occurrence, unfolded).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    v.push_str(line.trim_start());
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }

    /// The decoded bodies of the text/plain and text/html parts.
    pub(crate) fn part(&self, content_type: &str) -> Option<String> {
        let idx = self.data.find(&format!("Content-Type: {content_type}"))?;
        let rest = &self.data[idx..];
        let (head, body) = rest.split_once("\r\n\r\n")?;
        let body = body.split("\r\n--").next()?;
        if head.contains("Content-Transfer-Encoding: base64") {
            let joined: String = body.split("\r\n").collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(joined.trim())
                .ok()?;
            Some(String::from_utf8(bytes).ok()?)
        } else if head.contains("Content-Transfer-Encoding: quoted-printable") {
            Some(decode_qp(body))
        } else {
            Some(body.to_owned())
        }
    }
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 3 <= b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the SMTP server behaves.
#[derive(Clone, Default)]
pub(crate) struct SmtpOptions {
    /// Reject every login with 535.
    pub(crate) refuse_login: bool,
    /// Offer STARTTLS with this TLS config.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Answer the first N `DATA` commands with 451 (transient).
    pub(crate) fail_first_data: usize,
}

pub(crate) struct SmtpServer {
    pub(crate) addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    logins: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl SmtpServer {
    pub(crate) fn start(options: SmtpOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let logins = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let failures_left = Arc::new(AtomicUsize::new(options.fail_first_data));
        let handle = {
            let (mails, logins, stop) = (mails.clone(), logins.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let ctx = SmtpCtx {
                        options: options.clone(),
                        mails: mails.clone(),
                        logins: logins.clone(),
                        failures_left: failures_left.clone(),
                    };
                    std::thread::spawn(move || {
                        let _ = ctx.session(stream);
                    });
                }
            })
        };
        SmtpServer {
            addr,
            mails,
            logins,
            stop,
            handle: Some(handle),
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub(crate) fn logins(&self) -> Vec<(String, String)> {
        self.logins.lock().unwrap().clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct SmtpCtx {
    options: SmtpOptions,
    mails: Arc<Mutex<Vec<Mail>>>,
    logins: Arc<Mutex<Vec<(String, String)>>>,
    failures_left: Arc<AtomicUsize>,
}

enum SessionEnd {
    Quit,
    StartTls,
}

impl SmtpCtx {
    fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream);
        reader
            .get_mut()
            .write_all(b"220 localhost ESMTP recops-test\r\n")?;
        match self.converse(&mut reader, false)? {
            SessionEnd::Quit => Ok(()),
            SessionEnd::StartTls => {
                let Some(config) = self.options.tls.clone() else {
                    return Ok(());
                };
                let stream = reader.into_inner();
                let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
                let tls = rustls::StreamOwned::new(conn, stream);
                let mut reader = BufReader::new(tls);
                self.converse(&mut reader, true).map(|_| ())
            }
        }
    }

    fn converse<S: Read + Write>(
        &self,
        r: &mut BufReader<S>,
        encrypted: bool,
    ) -> std::io::Result<SessionEnd> {
        let mut auth: Option<(String, String)> = None;
        let mut from = String::new();
        let mut rcpt = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(SessionEnd::Quit);
            }
            let line = line.trim_end().to_owned();
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") {
                let mut s = String::from("250-localhost\r\n");
                if self.options.tls.is_some() && !encrypted {
                    s.push_str("250-STARTTLS\r\n");
                }
                s.push_str("250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
                s
            } else if upper.starts_with("HELO") {
                "250 localhost\r\n".into()
            } else if upper == "STARTTLS" && self.options.tls.is_some() && !encrypted {
                r.get_mut().write_all(b"220 2.0.0 Ready to start TLS\r\n")?;
                r.get_mut().flush()?;
                return Ok(SessionEnd::StartTls);
            } else if upper.starts_with("AUTH PLAIN") {
                let b64 = line[10..].trim().to_owned();
                let b64 = if b64.is_empty() {
                    r.get_mut().write_all(b"334 \r\n")?;
                    let mut l = String::new();
                    r.read_line(&mut l)?;
                    l.trim().to_owned()
                } else {
                    b64
                };
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_default();
                let parts: Vec<String> = raw
                    .split(|b| *b == 0)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                let creds = (
                    parts.get(1).cloned().unwrap_or_default(),
                    parts.get(2).cloned().unwrap_or_default(),
                );
                self.logins.lock().unwrap().push(creds.clone());
                if self.options.refuse_login {
                    "535 5.7.8 Authentication credentials invalid\r\n".into()
                } else {
                    auth = Some(creds);
                    "235 2.7.0 Authentication successful\r\n".into()
                }
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..].trim().trim_matches(['<', '>']).to_owned();
                from = from
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_matches(['<', '>'])
                    .to_owned();
                rcpt.clear();
                "250 2.1.0 Ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                rcpt.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                "250 2.1.5 Ok\r\n".into()
            } else if upper == "DATA" {
                let fail = self
                    .failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if fail {
                    "451 4.3.0 Temporary failure, try again\r\n".into()
                } else {
                    r.get_mut()
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                    r.get_mut().flush()?;
                    let mut data = String::new();
                    loop {
                        let mut l = String::new();
                        if r.read_line(&mut l)? == 0 {
                            return Ok(SessionEnd::Quit);
                        }
                        if l == ".\r\n" {
                            break;
                        }
                        let l = l.strip_prefix('.').unwrap_or(&l);
                        data.push_str(l);
                    }
                    self.mails.lock().unwrap().push(Mail {
                        mail_from: from.clone(),
                        rcpt_to: rcpt.clone(),
                        data,
                        auth: auth.clone(),
                        encrypted,
                    });
                    "250 2.0.0 Ok: queued\r\n".into()
                }
            } else if upper == "QUIT" {
                r.get_mut().write_all(b"221 2.0.0 Bye\r\n")?;
                r.get_mut().flush()?;
                return Ok(SessionEnd::Quit);
            } else if upper == "RSET" || upper == "NOOP" {
                "250 2.0.0 Ok\r\n".into()
            } else {
                "502 5.5.2 Command not recognized\r\n".into()
            };
            r.get_mut().write_all(reply.as_bytes())?;
            r.get_mut().flush()?;
        }
    }
}

/// The STARTTLS server config from the fixtures.
pub(crate) fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = fixtures();
    let certs = vec![CertificateDer::from_pem_file(dir.join("server.crt")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

// ---------------------------------------------------------------------------------
// HTTP (the Slack webhook)
// ---------------------------------------------------------------------------------

/// One request the HTTP server received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) content_type: Option<String>,
    pub(crate) body: String,
}

impl Request {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

pub(crate) struct HttpServer {
    pub(crate) addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Answers request i with `responses[i]` (the last one repeats). A status of 0
    /// means: read the request and never answer (until the server stops).
    pub(crate) fn start(responses: Vec<(u16, &'static str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0usize;
                let mut workers = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let response = responses[n.min(responses.len() - 1)];
                    n += 1;
                    let (requests, stop) = (requests.clone(), stop.clone());
                    workers.push(std::thread::spawn(move || {
                        let _ = serve(stream, response, &requests, &stop);
                    }));
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        HttpServer {
            addr,
            requests,
            stop,
            handle: Some(handle),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    (status, body): (u16, &str),
    requests: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(stream);
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(());
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut length = 0usize;
    let mut content_type = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_owned());
            }
        }
    }
    let mut buf = vec![0u8; length];
    r.read_exact(&mut buf)?;
    requests.lock().unwrap().push(Request {
        method,
        path,
        content_type,
        body: String::from_utf8_lossy(&buf).into_owned(),
    });
    if status == 0 {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        return Ok(());
    }
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    r.get_mut().write_all(resp.as_bytes())?;
    r.get_mut().flush()
}
