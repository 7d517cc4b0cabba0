//! The email templates: handlebars files under `<templates_dir>/email/`, one set per
//! locale, a text and an HTML part each, and the partials they share. Every template is
//! compiled and rendered once with sample data when the server starts, so a missing or
//! broken file stops the start with its name instead of failing a send later.

use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde_json::{json, Value};

use crate::model::{Locale, NoticeKind};

/// Why the templates could not be loaded; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {path} is missing")]
    Missing { path: String },
    #[error("template {path} is broken: {reason}")]
    Broken { path: String, reason: String },
}

/// The partials every template may use: `{{#> layout_html}}…{{/layout_html}}`,
/// `{{> history_txt}}` and so on.
const PARTIALS: [&str; 4] = ["layout_html", "layout_txt", "history_html", "history_txt"];
const LOCALES: [Locale; 2] = [Locale::De, Locale::En];

/// A rendered notice: the subject, and the two parts of its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Every email template, compiled. Text templates render without HTML escaping, HTML
/// templates with it, so they live in two registries.
pub struct EmailTemplates {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
}

impl std::fmt::Debug for EmailTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailTemplates").finish_non_exhaustive()
    }
}

impl EmailTemplates {
    /// Loads and checks `<templates_dir>/email/`: for every notice kind and locale
    /// `<kind>.<locale>.txt.hbs` (its first line is `Subject: …`) and
    /// `<kind>.<locale>.html.hbs`, plus `partials/<name>.hbs`.
    pub fn load(templates_dir: &Path) -> Result<Self, TemplateError> {
        let email_dir = templates_dir.join("email");
        let mut text = Handlebars::new();
        text.register_escape_fn(handlebars::no_escape);
        text.register_helper("quote", Box::new(quote_helper));
        let mut html = Handlebars::new();
        for partial in PARTIALS {
            let path = email_dir.join("partials").join(format!("{partial}.hbs"));
            let source = read(&path)?;
            let registry = if partial.ends_with("_html") {
                &mut html
            } else {
                &mut text
            };
            registry
                .register_partial(partial, source)
                .map_err(|error| broken(&path, error))?;
        }
        for kind in NoticeKind::ALL {
            for locale in LOCALES {
                for (part, registry) in [("txt", &mut text), ("html", &mut html)] {
                    let path = email_dir.join(file_name(kind, locale, part));
                    let source = read(&path)?;
                    registry
                        .register_template_string(&template_name(kind, locale), source)
                        .map_err(|error| broken(&path, error))?;
                }
            }
        }
        let templates = EmailTemplates { text, html };
        // Render each once: a template naming a missing partial fails here, not at
        // send time.
        for kind in NoticeKind::ALL {
            for locale in LOCALES {
                templates
                    .render(kind, locale, &sample_context())
                    .map_err(|(part, reason)| TemplateError::Broken {
                        path: email_dir
                            .join(file_name(kind, locale, part))
                            .display()
                            .to_string(),
                        reason,
                    })?;
            }
        }
        Ok(templates)
    }

    /// The templates shipped in this repository, for tests and benchmarks.
    pub fn shipped() -> Result<Self, TemplateError> {
        Self::load(&shipped_dir())
    }

    /// Renders `kind` in `locale`; an error names the part (`txt` or `html`).
    pub fn render(
        &self,
        kind: NoticeKind,
        locale: Locale,
        context: &Value,
    ) -> Result<Rendered, (&'static str, String)> {
        let name = template_name(kind, locale);
        let text = self
            .text
            .render(&name, context)
            .map_err(|error| ("txt", error.to_string()))?;
        let html = self
            .html
            .render(&name, context)
            .map_err(|error| ("html", error.to_string()))?;
        let (subject, body) = split_subject(&text).ok_or((
            "txt",
            "the first line must be \"Subject: …\", then a blank line".to_string(),
        ))?;
        Ok(Rendered {
            subject,
            text: body,
            html,
        })
    }
}

/// `<repo>/templates`, where the shipped templates live.
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates")
}

fn file_name(kind: NoticeKind, locale: Locale, part: &str) -> String {
    format!("{}.{}.{part}.hbs", kind.as_str(), locale.as_str())
}

fn template_name(kind: NoticeKind, locale: Locale) -> String {
    format!("{}.{}", kind.as_str(), locale.as_str())
}

/// Reads one template file; a missing or unreadable file is named.
pub fn read(path: &Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(path).map_err(|_| TemplateError::Missing {
        path: path.display().to_string(),
    })
}

/// The error of a template that does not compile or render, naming its file.
pub fn broken(path: &Path, error: impl std::fmt::Display) -> TemplateError {
    TemplateError::Broken {
        path: path.display().to_string(),
        // Handlebars' messages span lines; the start-up error is one line.
        reason: error.to_string().replace('\n', " "),
    }
}

handlebars::handlebars_helper!(quote_helper: |text: str| quote_every_line(text));

/// `{{quote text}}` in text templates: every line of a (multi-line) message
/// behind `> `, as mail clients quote, so the whole message reads as history.
fn quote_every_line(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.trim().is_empty() {
                ">".to_string()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `Subject: …` on the first line, a blank line, then the body. The subject is folded
/// to one line, so a template cannot inject headers.
fn split_subject(rendered: &str) -> Option<(String, String)> {
    let rendered = rendered.trim_start_matches(['\n', '\r']);
    let (first, rest) = rendered.split_once('\n')?;
    let subject = first.strip_prefix("Subject:")?.trim();
    if subject.is_empty() {
        return None;
    }
    let subject: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some((subject, rest.trim_start_matches(['\r', '\n']).to_string()))
}

/// Data of the shape real notices carry, for the start-up check.
fn sample_context() -> Value {
    json!({
        "recipient_name": "Maria Müller",
        "subject_tag": "[#42]",
        "ticket": {"number": 42, "subject": "Bondrucker", "status": "Erledigt"},
        "link": "https://support.example.com/l/k1.AAAA",
        "link_expires_at": "2026-01-01 12:00 UTC",
        "reply_address": "support+42-0a1b2c3d4e@support.example.com",
        "message": {"author": "Sam Support", "text": "Hallo"},
        "history": [{"author": "Maria Müller", "at": "2026-01-01 12:00 UTC", "text": "Hallo"}],
        "record": {"kind": "quote", "title": "Angebot 7"},
        "reopen_days": 30,
        "marker": "[ref:42-0a1b2c3d4e]",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_quotes_every_line_of_a_message() {
        let templates = EmailTemplates::shipped().unwrap();
        let mut context = sample_context();
        context["history"] = json!([{"author": "Maria", "at": "2026-01-01 12:00 UTC", "text": "Zeile 1\n\nZeile 3"}]);
        let rendered = templates
            .render(NoticeKind::StaffMessage, Locale::De, &context)
            .unwrap();
        assert!(
            rendered.text.contains("> Zeile 1\n>\n> Zeile 3"),
            "{}",
            rendered.text
        );
    }

    #[test]
    fn the_shipped_templates_load_and_render_every_notice() {
        let templates = EmailTemplates::shipped().unwrap();
        let rendered = templates
            .render(NoticeKind::TicketCreated, Locale::En, &sample_context())
            .unwrap();
        assert!(rendered.subject.contains("[#42]"), "{}", rendered.subject);
        assert!(rendered.text.contains("[ref:42-0a1b2c3d4e]"));
        assert!(rendered.html.contains("[ref:42-0a1b2c3d4e]"));
        assert!(!rendered.html.contains("<script"));
    }

    #[test]
    fn html_parts_escape_what_customers_wrote() {
        let templates = EmailTemplates::shipped().unwrap();
        let mut context = sample_context();
        context["message"]["text"] = json!("<script>alert(1)</script>");
        let rendered = templates
            .render(NoticeKind::StaffMessage, Locale::De, &context)
            .unwrap();
        assert!(!rendered.html.contains("<script>alert"));
        assert!(rendered.text.contains("<script>alert(1)</script>"));
    }

    #[test]
    fn a_broken_or_missing_template_is_named() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&shipped_dir(), dir.path());
        let broken_file = dir.path().join("email/ticket_done.en.html.hbs");
        std::fs::write(&broken_file, "{{#if x}} never closed").unwrap();
        let error = EmailTemplates::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("ticket_done.en.html.hbs"), "{error}");
        std::fs::remove_file(&broken_file).unwrap();
        let error = EmailTemplates::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("ticket_done.en.html.hbs"), "{error}");
        assert!(error.contains("missing"), "{error}");
    }

    fn copy_dir(from: &Path, to: &Path) {
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}
