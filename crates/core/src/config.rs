//! Config loading: YAML and JSON, `${VAR}` substitution, precise errors.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The format of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`).
    Json,
}

impl ConfigFormat {
    /// The format a file name implies: `.json` is JSON, anything else YAML.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => ConfigFormat::Json,
            _ => ConfigFormat::Yaml,
        }
    }
}

/// Semantic checks a config runs after parsing. Every problem is collected, so a user
/// fixes a bad file in one round.
pub trait Validate {
    /// Each problem as (dotted key path, what is wrong and what was expected).
    fn problems(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Where `${VAR}` references take their values from.
pub trait EnvSource {
    /// The value of `name`, or `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Loads the config at `path` (YAML or JSON by extension) with `${VAR}` substitution
/// from the process environment, then validates it. When the file does not exist, the
/// built-in `default_text` is used instead (the repo's `config/` file, embedded at build
/// time), so every command works in an empty home.
pub fn load_config<T>(path: &Path, default_text: &str) -> Result<T>
where
    T: DeserializeOwned + Validate,
{
    load_config_with_env(path, default_text, &ProcessEnv)
}

/// [`load_config`] with an explicit environment (for tests).
pub fn load_config_with_env<T>(path: &Path, default_text: &str, env: &dyn EnvSource) -> Result<T>
where
    T: DeserializeOwned + Validate,
{
    let format = ConfigFormat::from_path(path);
    match std::fs::read_to_string(path) {
        Ok(text) => parse_config(&text, path, format, env),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let label = PathBuf::from(format!("<built-in default for {}>", path.display()));
            parse_config(default_text, &label, format, env)
        }
        Err(e) => Err(Error::io("cannot read config", path, e)),
    }
}

/// Parses config `text` (read from `file`, used in messages), substituting `${VAR}`,
/// `${VAR:-default}` and `${VAR-default}` from `env`, and validates the result.
///
/// - An unset `${VAR}` without a default is an error naming VAR and the line.
/// - `$${` is a literal `${`.
/// - YAML: references expand in plain and quoted scalars (Docker Compose rules), a value
///   typed as a number or boolean may come from a variable, and substituted values never
///   appear in error snippets. JSON: references expand inside strings.
/// - Unknown keys, wrong types and failed validation name the file, the key path and
///   what was expected.
pub fn parse_config<T>(
    text: &str,
    file: &Path,
    format: ConfigFormat,
    env: &dyn EnvSource,
) -> Result<T>
where
    T: DeserializeOwned + Validate,
{
    let skip_comments = format == ConfigFormat::Yaml;
    let refs = scan_references(text, skip_comments);
    let mut props = HashMap::new();
    for r in &refs {
        match env.var(&r.name) {
            Some(v) => {
                props.insert(r.name.clone(), v);
            }
            None if r.required => {
                return Err(Error::MissingEnvVar {
                    file: file.to_path_buf(),
                    line: r.line,
                    var: r.name.clone(),
                });
            }
            None => {}
        }
    }
    let value: T = match format {
        ConfigFormat::Yaml => parse_yaml(text, file, props)?,
        ConfigFormat::Json => {
            let expanded = expand_json(text, &props);
            parse_json(&expanded, file)?
        }
    };
    let problems = value.problems();
    match problems.len() {
        0 => Ok(value),
        1 => {
            let (key, message) = problems.into_iter().next().unwrap_or_default();
            Err(Error::Config {
                file: file.to_path_buf(),
                key: Some(key),
                message,
            })
        }
        n => Err(Error::Config {
            file: file.to_path_buf(),
            key: None,
            message: format!(
                "{n} problems: {}",
                problems
                    .iter()
                    .map(|(k, m)| format!("`{k}`: {m}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}

fn parse_yaml<T: DeserializeOwned>(
    text: &str,
    file: &Path,
    props: HashMap<String, String>,
) -> Result<T> {
    let options = serde_saphyr::options! {
        property_syntax: serde_saphyr::PropertySyntax::DockerCompose,
        strict_booleans: true,
    }
    .with_properties(props);
    let key = RefCell::new(None::<String>);
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *key.borrow_mut() = Some(e.path().to_string());
            e.into_inner()
        })
    });
    result.map_err(|e| {
        // saphyr renders `error: line L column C: ...` plus a snippet of the source
        // (original text, so no substituted secret) labelled `<input>`.
        let rendered = e.to_string();
        let message = rendered
            .strip_prefix("error: ")
            .unwrap_or(&rendered)
            .replace("<input>", &file.display().to_string());
        Error::Config {
            file: file.to_path_buf(),
            key: key.into_inner(),
            message,
        }
    })
}

fn parse_json<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Config {
        file: file.to_path_buf(),
        key: Some(e.path().to_string()),
        message: e.inner().to_string(),
    })?;
    de.end().map_err(|e| Error::Config {
        file: file.to_path_buf(),
        key: None,
        message: e.to_string(),
    })?;
    Ok(value)
}

/// One `${...}` or `$NAME` reference found in a config text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    name: String,
    line: usize,
    /// True when the reference has no default or alternative (`${VAR}`, `$VAR`).
    required: bool,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Finds every variable reference, including those nested in default texts. With
/// `skip_comments`, text after a YAML comment marker (`#` at the start of a line or
/// after whitespace, outside quotes) is ignored.
fn scan_references(text: &str, skip_comments: bool) -> Vec<Reference> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = if skip_comments {
            strip_yaml_comment(line)
        } else {
            line
        };
        scan_line(line.as_bytes(), i + 1, false, &mut out);
    }
    out
}

/// References nested in a default text are optional: they only matter when the outer
/// variable is unset.
fn scan_line(b: &[u8], line: usize, nested: bool, out: &mut Vec<Reference>) {
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let Some(close) = matching_brace(b, i + 1) else {
                    // Malformed; the YAML/JSON layer reports it.
                    return;
                };
                let inner = &b[i + 2..close];
                let name_len = inner.iter().take_while(|&&c| is_name_char(c)).count();
                if name_len > 0 && is_name_start(inner[0]) {
                    let name = String::from_utf8_lossy(&inner[..name_len]).into_owned();
                    let rest = &inner[name_len..];
                    out.push(Reference {
                        name,
                        line,
                        required: rest.is_empty() && !nested,
                    });
                    // Nested references in the operator text.
                    if !rest.is_empty() {
                        scan_line(rest, line, true, out);
                    }
                }
                i = close + 1;
            }
            Some(&c) if is_name_start(c) => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && is_name_char(b[end]) {
                    end += 1;
                }
                out.push(Reference {
                    name: String::from_utf8_lossy(&b[start..end]).into_owned(),
                    line,
                    required: !nested,
                });
                i = end;
            }
            _ => i += 1,
        }
    }
}

fn matching_brace(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn strip_yaml_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev_ws = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_ws => return &line[..i],
            _ => {}
        }
        prev_ws = c.is_whitespace();
    }
    line
}

/// Expands references in a JSON text, escaping substituted values as JSON string
/// content. Unset optional references take their default (`:-`, `-`) or expand empty.
fn expand_json(text: &str, props: &HashMap<String, String>) -> String {
    let escape = |s: &str| {
        let quoted = serde_json::Value::String(s.to_owned()).to_string();
        quoted[1..quoted.len() - 1].to_owned()
    };
    expand(text.as_bytes(), props, &escape)
}

fn expand(b: &[u8], props: &HashMap<String, String>, escape: &dyn Fn(&str) -> String) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => {
                out.push(b'$');
                i += 2;
            }
            Some(b'{') => {
                let Some(close) = matching_brace(b, i + 1) else {
                    out.extend_from_slice(&b[i..]);
                    break;
                };
                let inner = &b[i + 2..close];
                let name_len = inner.iter().take_while(|&&c| is_name_char(c)).count();
                let name = String::from_utf8_lossy(&inner[..name_len]).into_owned();
                let rest = &inner[name_len..];
                let value = props.get(&name);
                let expanded = if let Some(default) = rest.strip_prefix(b":-") {
                    match value {
                        Some(v) if !v.is_empty() => escape(v),
                        _ => expand(default, props, escape),
                    }
                } else if let Some(default) = rest.strip_prefix(b"-") {
                    match value {
                        Some(v) => escape(v),
                        None => expand(default, props, escape),
                    }
                } else {
                    value.map(|v| escape(v)).unwrap_or_default()
                };
                out.extend_from_slice(expanded.as_bytes());
                i = close + 1;
            }
            Some(&c) if is_name_start(c) => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && is_name_char(b[end]) {
                    end += 1;
                }
                let name = String::from_utf8_lossy(&b[start..end]);
                if let Some(v) = props.get(name.as_ref()) {
                    out.extend_from_slice(escape(v).as_bytes());
                }
                i = end;
            }
            _ => {
                out.push(b'$');
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Email {
        smtp_server: String,
        smtp_port: u16,
        password: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        threshold: f64,
        severity: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        alerts: BTreeMap<String, Rule>,
        email: Email,
    }

    impl Validate for Cfg {
        fn problems(&self) -> Vec<(String, String)> {
            self.alerts
                .iter()
                .filter(|(_, r)| r.threshold < 0.0)
                .map(|(k, _)| {
                    (
                        format!("alerts.{k}.threshold"),
                        "expected a threshold >= 0".to_owned(),
                    )
                })
                .collect()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const GOOD: &str = r#"
# ${COMMENTED_OUT} is ignored in comments
alerts:
  high_latency:
    threshold: 200  # ms, ${ALSO_IGNORED}
    severity: warning
email:
  smtp_server: "${SMTP_SERVER:-localhost}"
  smtp_port: ${SMTP_PORT:-587}
  password: "${ALERT_EMAIL_PASSWORD}"
"#;

    #[test]
    fn yaml_substitutes_env_with_defaults_and_types() {
        let e = env(&[("ALERT_EMAIL_PASSWORD", "p\"a:s#s"), ("SMTP_PORT", "2525")]);
        let cfg: Cfg = parse_config(GOOD, Path::new("a.yaml"), ConfigFormat::Yaml, &e).unwrap();
        assert_eq!(cfg.email.smtp_server, "localhost");
        assert_eq!(cfg.email.smtp_port, 2525);
        assert_eq!(cfg.email.password, "p\"a:s#s");
        assert_eq!(cfg.alerts["high_latency"].threshold, 200.0);
    }

    #[test]
    fn unset_variable_without_default_names_the_variable_file_and_line() {
        let e = env(&[]);
        let err = parse_config::<Cfg>(GOOD, Path::new("cfg/alerts.yaml"), ConfigFormat::Yaml, &e)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ALERT_EMAIL_PASSWORD"), "{msg}");
        assert!(msg.contains("cfg/alerts.yaml"), "{msg}");
        assert!(msg.contains("line 10"), "{msg}");
        assert!(!msg.contains("COMMENTED_OUT"), "{msg}");
    }

    #[test]
    fn unknown_key_names_file_and_key_path() {
        let text = "alerts:\n  high_latency:\n    threshold: 1\n    severity: warning\n    chanels: [log]\nemail: {smtp_server: a, smtp_port: 1, password: b}\n";
        let err = parse_config::<Cfg>(text, Path::new("x.yaml"), ConfigFormat::Yaml, &env(&[]))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("x.yaml"), "{msg}");
        assert!(msg.contains("alerts.high_latency.chanels"), "{msg}");
        assert!(msg.contains("unknown field `chanels`"), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
        assert!(msg.contains("--> x.yaml:5:5"), "{msg}");
        assert!(!msg.contains(": error:"), "{msg}");
    }

    #[test]
    fn wrong_type_names_key_and_never_shows_the_secret() {
        let text = "alerts: {}\nemail:\n  smtp_server: a\n  smtp_port: ${SECRET}\n  password: b\n";
        let e = env(&[("SECRET", "hunter2")]);
        let err =
            parse_config::<Cfg>(text, Path::new("x.yaml"), ConfigFormat::Yaml, &e).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("email.smtp_port"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn validation_problems_are_reported_with_key() {
        let text = "alerts:\n  a: {threshold: -1, severity: x}\n  b: {threshold: -2, severity: x}\nemail: {smtp_server: a, smtp_port: 1, password: b}\n";
        let err = parse_config::<Cfg>(text, Path::new("x.yaml"), ConfigFormat::Yaml, &env(&[]))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("2 problems"), "{msg}");
        assert!(msg.contains("alerts.a.threshold") && msg.contains("alerts.b.threshold"));
    }

    #[test]
    fn json_substitution_escapes_values_and_reports_key() {
        let text = r#"{"alerts": {}, "email": {"smtp_server": "${HOST:-mail}", "smtp_port": 25, "password": "${PW}"}}"#;
        let e = env(&[("PW", "quo\"te\\back")]);
        let cfg: Cfg = parse_config(text, Path::new("s.json"), ConfigFormat::Json, &e).unwrap();
        assert_eq!(cfg.email.password, "quo\"te\\back");
        assert_eq!(cfg.email.smtp_server, "mail");

        let bad =
            r#"{"alerts": {}, "email": {"smtp_server": "a", "smtp_port": 70000, "password": "x"}}"#;
        let err =
            parse_config::<Cfg>(bad, Path::new("s.json"), ConfigFormat::Json, &e).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("email.smtp_port") && msg.contains("s.json"),
            "{msg}"
        );
    }

    #[test]
    fn escaped_dollar_is_literal() {
        let text =
            "alerts: {}\nemail: {smtp_server: \"$${NOT_A_VAR}\", smtp_port: 1, password: b}\n";
        let cfg: Cfg =
            parse_config(text, Path::new("x.yaml"), ConfigFormat::Yaml, &env(&[])).unwrap();
        assert_eq!(cfg.email.smtp_server, "${NOT_A_VAR}");
    }

    #[test]
    fn missing_file_uses_built_in_default() {
        let dir = tempfile::tempdir().unwrap();
        let default = "alerts: {}\nemail: {smtp_server: a, smtp_port: 1, password: b}\n";
        let cfg: Cfg =
            load_config_with_env(&dir.path().join("none.yaml"), default, &env(&[])).unwrap();
        assert_eq!(cfg.email.smtp_port, 1);
        std::fs::write(dir.path().join("bad.yaml"), "alerts: [").unwrap();
        let err = load_config_with_env::<Cfg>(&dir.path().join("bad.yaml"), default, &env(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("bad.yaml"), "{err}");
    }

    #[test]
    fn scanner_finds_nested_references() {
        let refs = scan_references("a: ${A:-${B}} $C $$D ${E-x}", false);
        let names: Vec<_> = refs.iter().map(|r| (r.name.as_str(), r.required)).collect();
        assert_eq!(
            names,
            vec![("A", false), ("B", false), ("C", true), ("E", false)]
        );
    }
}
