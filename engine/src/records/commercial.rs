//! What quotes, orders and invoices share: priced lines, a currency, a total, and
//! the checks of their input.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;
use crate::validate;

/// One priced line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub description: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
}

impl Line {
    pub fn total_cents(&self) -> i64 {
        self.unit_price_cents
            .saturating_mul(i64::from(self.quantity))
    }
}

/// A line as it comes in, before the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct LineInput {
    pub description: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// The most lines one quote or invoice may carry.
pub const MAX_LINES: usize = 500;

/// Checks `lines`, naming each bad one as `lines[i].field`.
pub fn check_lines(errors: &mut FieldErrors, lines: &[LineInput]) -> Vec<Line> {
    if lines.is_empty() {
        errors.add("lines", "missing", "needs at least one line");
    }
    if lines.len() > MAX_LINES {
        errors.add("lines", "too_long", format!("at most {MAX_LINES} lines"));
    }
    let mut checked = Vec::with_capacity(lines.len());
    for (position, line) in lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{position}].{name}");
        let description = errors.check(&field("description"), validate::line(&line.description));
        if line.quantity < 1 || line.quantity > i64::from(u32::MAX) {
            errors.add(
                &field("quantity"),
                "invalid",
                "must be a whole number of at least 1",
            );
        }
        if line.unit_price_cents < 0 {
            errors.add(
                &field("unit_price_cents"),
                "invalid",
                "must not be below zero",
            );
        }
        if let Some(description) = description {
            checked.push(Line {
                description,
                quantity: u32::try_from(line.quantity).unwrap_or(1),
                unit_price_cents: line.unit_price_cents,
            });
        }
    }
    checked
}

/// The sum of the lines; refuses a sum that does not fit.
pub fn total_cents(errors: &mut FieldErrors, lines: &[Line]) -> i64 {
    let total = lines.iter().try_fold(0i64, |sum, line| {
        line.unit_price_cents
            .checked_mul(i64::from(line.quantity))
            .and_then(|line_total| sum.checked_add(line_total))
    });
    match total {
        Some(total) => total,
        None => {
            errors.add("lines", "invalid", "the total is too large");
            0
        }
    }
}

/// A currency is three capital letters (ISO 4217's shape).
pub fn check_currency(errors: &mut FieldErrors, currency: &str) -> String {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.add(
            "currency",
            "invalid",
            "must be three capital letters, like EUR",
        );
    }
    currency.to_string()
}

/// A date `YYYY-MM-DD`.
pub fn check_date(errors: &mut FieldErrors, field: &str, text: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Some(date),
        Err(_) => {
            errors.add(field, "invalid", "must be a date YYYY-MM-DD");
            None
        }
    }
}

/// `1234` cents in `EUR` as `12,34 EUR` (de) or `12.34 EUR` (en).
pub fn format_money(cents: i64, currency: &str, locale: crate::model::Locale) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let whole = (cents / 100).to_string();
    let (group, decimal) = match locale {
        crate::model::Locale::De => ('.', ','),
        crate::model::Locale::En => (',', '.'),
    };
    let mut grouped = String::new();
    for (position, digit) in whole.chars().enumerate() {
        if position > 0 && (whole.len() - position).is_multiple_of(3) {
            grouped.push(group);
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped}{decimal}{:02} {currency}", cents % 100)
}

/// The lines as template data, with their totals formatted.
pub fn lines_data(
    lines: &[Line],
    currency: &str,
    locale: crate::model::Locale,
) -> serde_json::Value {
    serde_json::Value::Array(
        lines
            .iter()
            .map(|line| {
                serde_json::json!({
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_price": format_money(line.unit_price_cents, currency, locale),
                    "total": format_money(line.total_cents(), currency, locale),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Locale;

    #[test]
    fn money_reads_as_people_write_it() {
        assert_eq!(
            format_money(123456789, "EUR", Locale::De),
            "1.234.567,89 EUR"
        );
        assert_eq!(format_money(5, "EUR", Locale::En), "0.05 EUR");
        assert_eq!(format_money(100000, "USD", Locale::En), "1,000.00 USD");
    }

    #[test]
    fn every_bad_line_field_is_named() {
        let mut errors = FieldErrors::new();
        check_lines(
            &mut errors,
            &[
                LineInput {
                    description: "Kasse".into(),
                    quantity: 0,
                    unit_price_cents: -1,
                },
                LineInput {
                    description: "".into(),
                    quantity: 2,
                    unit_price_cents: 10,
                },
            ],
        );
        check_currency(&mut errors, "eur");
        let Err(crate::EngineError::Invalid { fields, .. }) = errors.finish() else {
            panic!("expected invalid");
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "currency",
                "lines[0].quantity",
                "lines[0].unit_price_cents",
                "lines[1].description"
            ]
        );
    }
}
