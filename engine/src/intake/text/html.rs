//! HTML mail bodies: conversion to readable plain text and sanitising for
//! display.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// Turns an HTML mail body into readable plain text.
///
/// Paragraphs and block elements become line breaks, `<br>` a hard break,
/// list items "- " (numbered for `<ol>`), links "text (url)", and lines inside
/// `<blockquote>` are prefixed with "> " so that [`extract_reply`] can strip
/// them like a plain-text quote. Entities are decoded; `script`, `style`,
/// `head` content and comments are dropped.
///
/// [`extract_reply`]: super::extract_reply
pub fn html_to_text(html: &str) -> String {
    let sink = TextSink {
        out: RefCell::new(Writer::default()),
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // The sink never asks the tokenizer to pause for scripts, so one feed
    // consumes everything; the loop only guards against a future change.
    let mut rounds = 0;
    while !input.is_empty() && rounds < 1000 {
        let _ = tokenizer.feed(&input);
        rounds += 1;
    }
    tokenizer.end();
    tokenizer.sink.out.take().finish()
}

struct TextSink {
    out: RefCell<Writer>,
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut out = self.out.borrow_mut();
        match token {
            Token::TagToken(tag) => return out.tag(&tag),
            Token::CharacterTokens(text) => out.text(&text),
            Token::NullCharacterToken
            | Token::CommentToken(_)
            | Token::DoctypeToken(_)
            | Token::EOFToken
            | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }
}

struct Line {
    depth: usize,
    text: String,
}

enum ListKind {
    Bullet,
    Numbered(u32),
}

struct OpenLink {
    href: String,
    text: String,
}

#[derive(Default)]
struct Writer {
    lines: Vec<Line>,
    cur: String,
    cur_depth: usize,
    quote_depth: usize,
    skip_depth: usize,
    pre_depth: usize,
    lists: Vec<ListKind>,
    link: Option<OpenLink>,
    /// One entry per open `<div>`: whether it is a quote container.
    divs: Vec<bool>,
    /// Set once a client's "the history starts here" marker was seen.
    quoting_the_rest: bool,
    /// Inside an Outlook `<p class="MsoNormal">`.
    mso_paragraph: bool,
}

impl Writer {
    fn tag(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        let name: &str = &tag.name;
        let start = tag.kind == TagKind::StartTag;
        match name {
            // Raw text elements: the tokenizer must be switched explicitly
            // because there is no tree builder doing it for us.
            "script" | "style" | "title" | "textarea" | "xmp" | "noembed" | "noframes" => {
                if start && !tag.self_closing {
                    self.skip_depth += 1;
                    let kind = match name {
                        "script" => RawKind::ScriptData,
                        "title" | "textarea" => RawKind::Rcdata,
                        _ => RawKind::Rawtext,
                    };
                    return TokenSinkResult::RawData(kind);
                }
                if !start {
                    self.skip_depth = self.skip_depth.saturating_sub(1);
                }
            }
            "head" => {
                if start {
                    self.skip_depth += 1;
                } else {
                    self.skip_depth = self.skip_depth.saturating_sub(1);
                }
            }
            "body" if start => {
                // A missing </head> must not swallow the whole body.
                self.skip_depth = 0;
            }
            "br" => self.hard_break(),
            "span" | "hr" if start && quote_role(tag) == Some(QuoteRole::RestIsHistory) => {
                self.line_break();
                self.quote_the_rest();
            }
            // Outlook writes every line as a paragraph without margins, and an
            // empty line as one holding a no-break space: read them as lines.
            "p" if start && has_class(tag, "msonormal") => {
                self.line_break();
                self.mso_paragraph = true;
            }
            "p" if !start && self.mso_paragraph => {
                self.mso_paragraph = false;
                if !self.cur.is_empty() && self.cur.trim().is_empty() {
                    self.cur.clear();
                    self.lines.push(Line {
                        depth: self.quote_depth,
                        text: String::new(),
                    });
                } else {
                    self.line_break();
                }
            }
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" | "hr" | "dl" => {
                self.blank_line()
            }
            "pre" => {
                self.blank_line();
                if start {
                    self.pre_depth += 1;
                } else {
                    self.pre_depth = self.pre_depth.saturating_sub(1);
                }
            }
            "blockquote" => {
                if start {
                    self.blank_line();
                    self.quote_depth += 1;
                } else {
                    self.line_break();
                    self.quote_depth = self.quote_depth.saturating_sub(1);
                    self.blank_line();
                }
            }
            "ul" | "ol" => {
                if start {
                    self.line_break();
                    self.lists.push(if name == "ol" {
                        ListKind::Numbered(0)
                    } else {
                        ListKind::Bullet
                    });
                } else {
                    self.lists.pop();
                    self.line_break();
                    if self.lists.is_empty() {
                        self.blank_line();
                    }
                }
            }
            "li" => {
                self.line_break();
                if start {
                    let indent = "  ".repeat(self.lists.len().saturating_sub(1));
                    let marker = match self.lists.last_mut() {
                        Some(ListKind::Numbered(n)) => {
                            *n += 1;
                            format!("{indent}{n}. ")
                        }
                        _ => format!("{indent}- "),
                    };
                    self.raw(&marker);
                }
            }
            "div" => {
                self.line_break();
                if start {
                    let role = quote_role(tag);
                    let container = role == Some(QuoteRole::Container);
                    self.divs.push(container);
                    if container {
                        self.quote_depth += 1;
                    }
                    if role == Some(QuoteRole::RestIsHistory) {
                        self.quote_the_rest();
                    }
                } else if self.divs.pop() == Some(true) {
                    self.quote_depth = self.quote_depth.saturating_sub(1);
                }
            }
            "tr" | "address" | "article" | "section" | "header" | "footer" | "center" | "dt"
            | "dd" | "caption" | "figure" | "figcaption" | "nav" | "aside" | "main" => {
                self.line_break()
            }
            "td" | "th" if !start => self.text(" "),
            "a" => {
                if start {
                    let href = tag
                        .attrs
                        .iter()
                        .find(|a| &*a.name.local == "href")
                        .map(|a| a.value.trim().to_string())
                        .unwrap_or_default();
                    self.link = Some(OpenLink {
                        href,
                        text: String::new(),
                    });
                } else if let Some(link) = self.link.take() {
                    if let Some(url) = link_suffix(&link.href, &link.text) {
                        self.raw(&format!(" ({url})"));
                    }
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }

    /// Everything from here on is quoted history (Outlook puts its header
    /// block in a marked element and the old message after it, as siblings).
    fn quote_the_rest(&mut self) {
        if !self.quoting_the_rest {
            self.quoting_the_rest = true;
            self.quote_depth += 1;
        }
    }

    fn text(&mut self, text: &str) {
        if self.skip_depth > 0 {
            return;
        }
        if self.pre_depth > 0 {
            let mut first = true;
            for part in text.split('\n') {
                if !first {
                    self.hard_break();
                }
                first = false;
                self.raw(&part.replace('\u{a0}', " "));
            }
            return;
        }
        let mut collapsed = String::with_capacity(text.len());
        let mut last_space = self.cur.is_empty() || self.cur.ends_with(' ');
        for c in text.chars() {
            if c.is_ascii_whitespace() {
                if !last_space {
                    collapsed.push(' ');
                    last_space = true;
                }
            } else {
                // A no-break space is deliberate spacing, so it survives collapsing.
                collapsed.push(if c == '\u{a0}' { ' ' } else { c });
                last_space = false;
            }
        }
        if !collapsed.is_empty() {
            self.raw(&collapsed);
        }
    }

    fn raw(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.cur.is_empty() {
            self.cur_depth = self.quote_depth;
        }
        self.cur.push_str(s);
        if let Some(link) = self.link.as_mut() {
            link.text.push_str(s);
        }
    }

    fn hard_break(&mut self) {
        let depth = if self.cur.is_empty() {
            self.quote_depth
        } else {
            self.cur_depth
        };
        let text = std::mem::take(&mut self.cur);
        self.lines.push(Line { depth, text });
    }

    fn line_break(&mut self) {
        if !self.cur.trim().is_empty() {
            self.hard_break();
        } else {
            self.cur.clear();
        }
    }

    fn blank_line(&mut self) {
        self.line_break();
        if self.lines.last().is_some_and(|l| !l.text.trim().is_empty()) {
            self.lines.push(Line {
                depth: self.quote_depth,
                text: String::new(),
            });
        }
    }

    fn finish(mut self) -> String {
        // Blank runs are collapsed here rather than while writing because
        // nested block elements each ask for their own blank line.
        self.line_break();
        let mut out: Vec<String> = Vec::with_capacity(self.lines.len());
        let mut blank_run = 0;
        for line in &self.lines {
            let text = line.text.trim_end();
            if text.trim().is_empty() {
                blank_run += 1;
                if blank_run > 1 || out.is_empty() {
                    continue;
                }
            } else {
                blank_run = 0;
            }
            let rendered = if line.depth == 0 {
                text.to_string()
            } else if text.trim().is_empty() {
                ">".repeat(line.depth)
            } else {
                format!("{} {}", ">".repeat(line.depth), text)
            };
            out.push(rendered);
        }
        while out
            .last()
            .is_some_and(|l| l.trim_start_matches('>').trim().is_empty())
        {
            out.pop();
        }
        out.join("\n")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteRole {
    /// The element holds quoted history or a client-made signature.
    Container,
    /// The element starts the history, which runs to the end of the body.
    RestIsHistory,
}

/// Classes and ids with which mail clients mark the quoted history and the
/// signatures they insert (Outlook on the web prefixes them with `x_`).
const QUOTE_CONTAINERS: &[&str] = &[
    "gmail_quote",
    "gmail_attr",
    "gmail_signature",
    "yahoo_quoted",
    "moz-cite-prefix",
    "moz-signature",
    "protonmail_quote",
    "protonmail_signature_block",
    "zmail_extra",
    "mail-editor-reference-message-container",
    "ms-outlook-mobile-signature",
    "__quoted_text__",
    "__headers__",
    "messagereplysection",
    "yandex_quote",
    "tutanota_quote",
    "ios_signature",
    "apple-mail-signature",
];

/// Markers after which the rest of the body is history: Outlook's header
/// containers, the web client's send anchor and rule, Zimbra's divider.
const REST_MARKERS: &[&str] = &[
    "divrplyfwdmsg",
    "appendonsend",
    "olk_src_body_section",
    "outlookmessageheader",
    "zwchr",
    "__divider__",
];

fn has_class(tag: &Tag, wanted: &str) -> bool {
    tag.attrs.iter().any(|a| {
        &*a.name.local == "class"
            && a.value
                .split_whitespace()
                .any(|class| class.eq_ignore_ascii_case(wanted))
    })
}

/// What a `<div>`, `<span>` or `<hr>` means for the quote, read from its
/// class, id, data-marker and name, and for Outlook desktop and Windows Mail
/// from the style of the box around their header block: a top border only.
fn quote_role(tag: &Tag) -> Option<QuoteRole> {
    let attribute = |wanted: &str| -> String {
        tag.attrs
            .iter()
            .find(|a| &*a.name.local == wanted)
            .map(|a| a.value.to_lowercase())
            .unwrap_or_default()
    };
    let names: Vec<String> = ["class", "id", "data-marker", "name"]
        .iter()
        .flat_map(|key| {
            attribute(key)
                .split_whitespace()
                .map(|word| word.strip_prefix("x_").unwrap_or(word).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let named = |list: &[&str]| names.iter().any(|n| list.contains(&n.as_str()));
    if named(REST_MARKERS) {
        return Some(QuoteRole::RestIsHistory);
    }
    let style: String = attribute("style")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if &*tag.name == "hr" && style.contains("display:inline-block") && style.contains("width:98%") {
        return Some(QuoteRole::RestIsHistory);
    }
    let top_border_only = style.contains("border-top")
        && style.contains("solid")
        && style.contains("padding")
        && !style.contains("border-bottom")
        && !style.contains("border-left")
        && !style.contains("border-right");
    if &*tag.name == "div" && top_border_only {
        return Some(QuoteRole::RestIsHistory);
    }
    (&*tag.name == "div" && named(QUOTE_CONTAINERS)).then_some(QuoteRole::Container)
}

/// Decides whether a link's target adds information beyond its text.
fn link_suffix(href: &str, text: &str) -> Option<String> {
    let text = text.trim();
    let lower = href.to_ascii_lowercase();
    if href.is_empty() || href.starts_with('#') || lower.starts_with("javascript:") {
        return None;
    }
    if lower.starts_with("cid:") {
        return None;
    }
    let bare = |s: &str| -> String {
        let s = s.trim().trim_end_matches('/');
        let s = s
            .strip_prefix("mailto:")
            .or_else(|| s.strip_prefix("tel:"))
            .or_else(|| s.strip_prefix("https://"))
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        s.strip_prefix("www.").unwrap_or(s).to_lowercase()
    };
    if text.is_empty() || bare(href) == bare(text) {
        // An image-only link still deserves its target, a duplicate does not.
        return text.is_empty().then(|| href.to_string());
    }
    Some(href.to_string())
}

/// Style properties that cannot load anything; `url()` only appears in
/// properties left off this list.
const SAFE_STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "font-weight",
    "font-style",
    "font-size",
    "font-family",
    "text-align",
    "text-decoration",
    "vertical-align",
    "white-space",
    "width",
    "max-width",
    "height",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-top",
    "border-bottom",
    "border-left",
    "border-right",
    "border-collapse",
    "line-height",
];

/// Sanitises an HTML mail body so it can be shown inside our pages.
///
/// Scripts, event handlers, forms, frames and stylesheets are removed. No
/// remote content is loaded: `img` keeps its `src` only for `cid:` (inline
/// attachments) and `data:image/` URLs, relative URLs are dropped, and inline
/// styles are limited to properties that cannot reference a URL. Links get
/// `rel="noopener noreferrer"`.
pub fn sanitize_html(html: &str) -> String {
    let styles: HashSet<&str> = SAFE_STYLE_PROPERTIES.iter().copied().collect();
    ammonia::Builder::default()
        .add_url_schemes(["cid", "data"])
        .url_relative(ammonia::UrlRelative::Deny)
        .add_generic_attributes(["style", "dir"])
        .filter_style_properties(styles)
        .add_tag_attributes("td", ["valign", "width"])
        .add_tag_attributes("table", ["width", "cellpadding", "cellspacing", "border"])
        .attribute_filter(filter_attribute)
        .link_rel(Some("noopener noreferrer"))
        .clean(html)
        .to_string()
}

/// Tracking pixels and remote images reveal to the sender that and when an
/// agent opened the mail, so only self-contained image sources survive.
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    let lower = value.trim_start().to_ascii_lowercase();
    match (element, attribute) {
        ("img", "src") => {
            (lower.starts_with("cid:") || lower.starts_with("data:image/")).then(|| value.into())
        }
        // data: in a link is a classic phishing vector and never needed in mail.
        (_, "href") | (_, "cite") if lower.starts_with("data:") => None,
        (_, "style") if lower.contains("url(") || lower.contains("expression(") => None,
        _ => Some(value.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{html_to_text, sanitize_html};

    #[test]
    fn paragraphs_and_breaks() {
        let h = "<p>Hallo Team,</p><p>Zeile 1<br>Zeile 2</p>";
        assert_eq!(html_to_text(h), "Hallo Team,\n\nZeile 1\nZeile 2");
    }

    #[test]
    fn gmail_div_structure() {
        let h = "<div dir=\"ltr\"><div>Hallo,</div><div><br></div><div>geht wieder.</div></div>";
        assert_eq!(html_to_text(h), "Hallo,\n\ngeht wieder.");
    }

    #[test]
    fn lists() {
        let h = "<p>Steps:</p><ul><li>one</li><li>two</li></ul><ol><li>a</li><li>b</li></ol>";
        assert_eq!(html_to_text(h), "Steps:\n\n- one\n- two\n\n1. a\n2. b");
    }

    #[test]
    fn links_show_their_target() {
        let h = "See <a href=\"https://example.org/kb/1\">the article</a> or <a href=\"https://example.org\">example.org</a> or <a href=\"mailto:a@example.org\">a@example.org</a>.";
        assert_eq!(
            html_to_text(h),
            "See the article (https://example.org/kb/1) or example.org or a@example.org."
        );
    }

    #[test]
    fn blockquote_lines_are_prefixed() {
        let h = "<div>Danke!</div><div class=\"gmail_quote\">Am 3. Nov. schrieb X:<blockquote><div>Zeile A</div><div>Zeile B</div></blockquote></div>";
        // The gmail_quote container quotes its header too, one level more inside.
        assert_eq!(
            html_to_text(h),
            "Danke!\n> Am 3. Nov. schrieb X:\n>\n>> Zeile A\n>> Zeile B"
        );
    }

    #[test]
    fn outlook_paragraphs_are_lines_and_its_header_box_starts_the_history() {
        let h = "<p class=MsoNormal>Hallo,<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>geht wieder.<o:p></o:p></p><p class=MsoNormal>Max<o:p></o:p></p><div style=\"border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm\"><p class=MsoNormal><b>Von:</b> Support</p></div><p class=MsoNormal>Alt</p>";
        assert_eq!(
            html_to_text(h),
            "Hallo,\n\ngeht wieder.\nMax\n> Von: Support\n> Alt"
        );
    }

    #[test]
    fn yahoo_and_outlook_web_markers_quote_what_follows() {
        let h = "<div>Ok</div><div class=\"yahoo_quoted\"><div>On Tuesday X wrote:</div><div>old</div></div><div>after</div>";
        assert_eq!(html_to_text(h), "Ok\n> On Tuesday X wrote:\n> old\nafter");
        let h = "<div>Ok</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> X</div><div>old</div>";
        assert_eq!(html_to_text(h), "Ok\n>\n> From: X\n> old");
    }

    #[test]
    fn entities_script_and_style() {
        let h = "<html><head><title>T</title><style>p{color:red}</style></head><body><script>alert(1)</script><p>Gr&uuml;&szlig;e &amp; &lt;Dank&gt;&nbsp;!</p><!-- c --></body></html>";
        assert_eq!(html_to_text(h), "Grüße & <Dank> !");
    }

    #[test]
    fn whitespace_is_collapsed() {
        let h = "<p>\n   Hello\n   world   </p>";
        assert_eq!(html_to_text(h), "Hello world");
    }

    #[test]
    fn pre_keeps_layout() {
        let h = "<pre>a  b\n  c</pre>";
        assert_eq!(html_to_text(h), "a  b\n  c");
    }

    #[test]
    fn sanitize_removes_script_and_handlers() {
        let s = sanitize_html("<p onclick=\"x()\">Hi<script>alert(1)</script></p>");
        assert_eq!(s, "<p>Hi</p>");
    }

    #[test]
    fn sanitize_drops_remote_images_keeps_cid() {
        let s = sanitize_html(
            "<img src=\"https://tracker.example.net/p.gif\"><img src=\"cid:logo@x\" alt=\"Logo\"><img src=\"//cdn.example.net/a.png\">",
        );
        assert!(!s.contains("tracker"), "{s}");
        assert!(!s.contains("cdn.example.net"), "{s}");
        assert!(s.contains("src=\"cid:logo@x\""), "{s}");
    }

    #[test]
    fn sanitize_drops_stylesheets_and_url_styles() {
        let s = sanitize_html(
            "<link rel=\"stylesheet\" href=\"https://example.net/a.css\"><style>@import url(x)</style><p style=\"background:url(https://example.net/x.png);color:red\">t</p>",
        );
        assert!(!s.contains("example.net"), "{s}");
        assert!(!s.contains("<link"), "{s}");
        assert!(!s.contains("<style"), "{s}");
    }

    #[test]
    fn sanitize_links_get_rel() {
        let s = sanitize_html("<a href=\"https://example.org\" target=\"_top\">x</a>");
        assert_eq!(
            s,
            "<a href=\"https://example.org\" rel=\"noopener noreferrer\">x</a>"
        );
        let s = sanitize_html(
            "<a href=\"javascript:alert(1)\">x</a><a href=\"data:text/html,x\">y</a>",
        );
        assert!(!s.contains("javascript"), "{s}");
        assert!(!s.contains("data:"), "{s}");
    }
}
