//! What the pages show of engine values: times in the vendor's time zone and the
//! contact's language ("30.11.2026, 14:05"), history entries as template data, the
//! address of each record's page.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use kontor_engine::ids::{AttachmentId, StaffId};
use kontor_engine::model::{
    Attachment, Author, EntryBody, Event, HistoryEntry, Locale, RecordKind, RecordRef,
};

/// A moment as a person in `timezone` reads it.
pub fn time(at: DateTime<Utc>, locale: Locale, timezone: chrono_tz::Tz) -> String {
    let local = at.with_timezone(&timezone);
    match locale {
        Locale::De => local.format("%d.%m.%Y, %H:%M").to_string(),
        Locale::En => local.format("%-d %b %Y, %H:%M").to_string(),
    }
}

/// A calendar date.
pub fn date(day: NaiveDate, locale: Locale) -> String {
    match locale {
        Locale::De => day.format("%d.%m.%Y").to_string(),
        Locale::En => day.format("%-d %b %Y").to_string(),
    }
}

/// The machine-readable form for `<time datetime=…>`.
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The page of a record.
pub fn record_url_of(record: RecordRef) -> String {
    kontor_engine::records::portal_path(record).unwrap_or_else(|| "/portal".into())
}

/// Who wrote an entry, as the customer reads it.
pub fn author_name(author: &Author, locale: Locale) -> String {
    match author {
        Author::Contact { name, email, .. } => {
            if name.is_empty() {
                email
                    .as_ref()
                    .map(|e| e.as_ref().to_string())
                    .unwrap_or_default()
            } else {
                name.clone()
            }
        }
        Author::Staff { name, .. } => name.clone(),
        Author::System => match locale {
            Locale::De => "System".into(),
            Locale::En => "System".into(),
        },
    }
}

/// Everything a page needs to show history entries.
pub struct HistoryContext<'a> {
    pub staff_names: &'a BTreeMap<StaffId, String>,
    pub attachments: &'a BTreeMap<AttachmentId, Attachment>,
    /// The record page's address; attachments hang below it.
    pub record_url: &'a str,
    pub locale: Locale,
    pub timezone: chrono_tz::Tz,
}

/// History entries as the `history_<locale>` partial reads them: one flag per kind of
/// entry, and the words of events left to the template.
pub fn history(entries: &[HistoryEntry], context: &HistoryContext<'_>) -> Vec<Value> {
    let locale = context.locale;
    entries
        .iter()
        .map(|entry| {
            let mut item = json!({
                "at": time(entry.at, locale, context.timezone),
                "at_iso": iso(entry.at),
                "author": author_name(&entry.author, locale),
                "by_staff": matches!(entry.author, Author::Staff { .. }),
                "by_system": matches!(entry.author, Author::System),
            });
            let Some(object) = item.as_object_mut() else {
                return item;
            };
            match &entry.body {
                EntryBody::Message {
                    text, attachments, ..
                } => {
                    object.insert("message".into(), json!(true));
                    object.insert("text".into(), json!(text));
                    let files: Vec<Value> = attachments
                        .iter()
                        .filter_map(|id| context.attachments.get(id))
                        .map(|attachment| {
                            json!({
                                "url": format!("{}/attachments/{}", context.record_url, attachment.id),
                                "filename": attachment.filename,
                                "size": human_size(attachment.size),
                            })
                        })
                        .collect();
                    object.insert("attachments".into(), json!(files));
                }
                EntryBody::TimeEntry {
                    minutes,
                    note,
                    date: day,
                } => {
                    object.insert("time_entry".into(), json!(true));
                    object.insert("minutes".into(), json!(minutes));
                    object.insert("duration".into(), json!(duration(*minutes)));
                    object.insert("note".into(), json!(note));
                    object.insert("date".into(), json!(date(*day, locale)));
                }
                EntryBody::Event(event) => {
                    object.insert("event".into(), json!(true));
                    let (flag, details) = event_data(event, context);
                    object.insert(flag.into(), json!(true));
                    if let Value::Object(details) = details {
                        object.extend(details);
                    }
                }
            }
            item
        })
        .collect()
}

fn event_data(event: &Event, context: &HistoryContext<'_>) -> (&'static str, Value) {
    let locale = context.locale;
    match event {
        Event::StatusChanged { from, to } => (
            "status_changed",
            json!({"from": from.display_name(locale), "to": to.display_name(locale)}),
        ),
        Event::Assigned { to, .. } => (
            "assigned",
            json!({"to": context.staff_names.get(to).cloned().unwrap_or_default()}),
        ),
        Event::Reopened => ("reopened", json!({})),
        Event::Linked { number, .. } => (
            "linked",
            json!({"number": number, "url": format!("/portal/tickets/{number}")}),
        ),
        Event::Reminded => ("reminded", json!({})),
        Event::Sent => ("sent", json!({})),
        Event::Signed { sha256 } => ("signed", json!({"sha256": sha256})),
        Event::Accepted { sha256, order_id } => (
            "accepted",
            json!({
                "sha256": sha256,
                "order_url": record_url_of(RecordRef { kind: RecordKind::Order, id: order_id.0 }),
            }),
        ),
        Event::Declined { reason } => ("declined", json!({"reason": reason})),
        Event::Expired => ("expired", json!({})),
        Event::Cancelled { reason } => ("cancelled", json!({"reason": reason})),
        Event::Paid => ("paid", json!({})),
        Event::ModulesChanged { added, removed } => (
            "modules_changed",
            json!({"added": added.join(", "), "removed": removed.join(", ")}),
        ),
        // Never shown (`portal::shown_to_customers`), but a page must not fail on one.
        Event::PermissionsChanged { .. }
        | Event::Bounced { .. }
        | Event::NotificationFailed { .. } => ("other", json!({})),
    }
}

/// `90` → `1:30 h`.
pub fn duration(minutes: u32) -> String {
    format!("{}:{:02} h", minutes / 60, minutes % 60)
}

/// Bytes as a person reads them.
pub fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{} KB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// Paging data for the `pager_<locale>` partial.
pub fn pager(base: &str, query: &str, page: u32, per_page: u32, total: u64) -> Value {
    let pages = total.div_ceil(u64::from(per_page.max(1))).max(1) as u32;
    let link = |to: u32| {
        let separator = if query.is_empty() { "" } else { "&" };
        format!("{base}?{query}{separator}page={to}")
    };
    json!({
        "page": page,
        "pages": pages,
        "total": total,
        "prev": (page > 1).then(|| link(page - 1)),
        "next": (page < pages).then(|| link(page + 1)),
        "several": pages > 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_read_in_berlin_in_the_contacts_language() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 13, 5, 0).unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(time(at, Locale::De, berlin), "30.11.2026, 14:05");
        assert_eq!(time(at, Locale::En, berlin), "30 Nov 2026, 14:05");
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(time(summer, Locale::De, berlin), "01.07.2026, 14:00");
    }

    #[test]
    fn pages_link_forward_and_back_keeping_the_filter() {
        let second = pager("/portal/tickets", "status=done", 2, 50, 120);
        assert_eq!(second["pages"], 3);
        assert_eq!(second["prev"], "/portal/tickets?status=done&page=1");
        assert_eq!(second["next"], "/portal/tickets?status=done&page=3");
        assert_eq!(pager("/portal/tickets", "", 1, 50, 0)["pages"], 1);
    }
}
