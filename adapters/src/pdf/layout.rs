//! A small flow layout for A4 pages: the builders in `pdf/mod.rs` add titles,
//! paragraphs, label/value pairs, tables and images from top to bottom; a block that
//! does not fit starts a new page. Layout only measures and places (`Op`s per page);
//! [`render`] turns the pages into PDF bytes with krilla, which embeds the glyphs used.

use krilla::color::luma;
use krilla::embed::EmbeddedFile;
use krilla::geom::{PathBuilder, Point, Size, Transform};
use krilla::image::Image;
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use skrifa::charmap::Charmap;
use skrifa::instance::{LocationRef, Size as FontSize};
use skrifa::metrics::GlyphMetrics;
use skrifa::{GlyphId, MetadataProvider};

use super::PdfError;

/// A4 in points.
pub(super) const PAGE_WIDTH: f32 = 595.28;
pub(super) const PAGE_HEIGHT: f32 = 841.89;
const MARGIN_X: f32 = 56.0;
const MARGIN_TOP: f32 = 56.0;
/// Where the body ends; the footer sits below.
const BODY_BOTTOM: f32 = PAGE_HEIGHT - 64.0;
const FOOTER_BASELINE: f32 = PAGE_HEIGHT - 36.0;
pub(super) const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN_X;
/// The label column of label/value pairs.
const LABEL_WIDTH: f32 = 130.0;
const COLUMN_GAP: f32 = 10.0;
/// DejaVu Sans's ascender, in em: from a line's top to its baseline.
const ASCENT: f32 = 0.93;
const LINE_SPACING: f32 = 1.35;

static REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Weight {
    Regular,
    Bold,
}

/// How a run of text looks: weight, size in points, and grey level (0 is black).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Style {
    pub weight: Weight,
    pub size: f32,
    pub gray: u8,
}

impl Style {
    pub const TITLE: Style = Style {
        weight: Weight::Bold,
        size: 18.0,
        gray: 0,
    };
    pub const HEADING: Style = Style {
        weight: Weight::Bold,
        size: 12.0,
        gray: 0,
    };
    pub const BODY: Style = Style {
        weight: Weight::Regular,
        size: 10.0,
        gray: 0,
    };
    pub const STRONG: Style = Style {
        weight: Weight::Bold,
        size: 10.0,
        gray: 0,
    };
    /// Labels and the line under the title.
    pub const MUTED: Style = Style {
        weight: Weight::Regular,
        size: 9.0,
        gray: 90,
    };
    /// Hashes and user agents: long strings that must stay on few lines.
    pub const SMALL: Style = Style {
        weight: Weight::Regular,
        size: 8.0,
        gray: 0,
    };
    /// A typed signature.
    pub const SIGNATURE: Style = Style {
        weight: Weight::Regular,
        size: 20.0,
        gray: 20,
    };

    fn line_height(self) -> f32 {
        self.size * LINE_SPACING
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
}

/// One column of a table: its share of the width left by the fixed columns
/// (`width: None`) or a fixed width in points.
#[derive(Debug, Clone, Copy)]
pub(super) struct Column {
    pub width: Option<f32>,
    pub align: Align,
    pub style: Style,
}

/// One face of the built-in font, with what layout needs to measure text.
pub(super) struct Face {
    font: Font,
    charmap: Charmap<'static>,
    metrics: GlyphMetrics<'static>,
}

impl Face {
    fn load(name: &'static str, data: &'static [u8]) -> Result<Self, PdfError> {
        let font = Font::new(data.into(), 0).ok_or(PdfError::Font(name))?;
        let font_ref = skrifa::FontRef::new(data).map_err(|_| PdfError::Font(name))?;
        Ok(Self {
            font,
            charmap: font_ref.charmap(),
            // Size 1: advances in em, scaled by the font size when measuring.
            metrics: font_ref.glyph_metrics(FontSize::new(1.0), LocationRef::default()),
        })
    }

    fn advance(&self, ch: char) -> f32 {
        let glyph = self.charmap.map(ch).unwrap_or(GlyphId::NOTDEF);
        self.metrics.advance_width(glyph).unwrap_or(0.0)
    }
}

/// The regular and bold faces of DejaVu Sans, embedded in the binary.
pub(super) struct Fonts {
    regular: Face,
    bold: Face,
}

impl Fonts {
    pub fn load() -> Result<Self, PdfError> {
        Ok(Self {
            regular: Face::load("DejaVuSans", REGULAR_TTF)?,
            bold: Face::load("DejaVuSans-Bold", BOLD_TTF)?,
        })
    }

    fn face(&self, weight: Weight) -> &Face {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// The width of `text` in points. Kerning is left out, so text measured here
    /// is never narrower than krilla draws it.
    pub fn width(&self, text: &str, style: Style) -> f32 {
        let face = self.face(style.weight);
        text.chars().map(|ch| face.advance(ch)).sum::<f32>() * style.size
    }

    /// `text` broken into lines no wider than `width`: at spaces where possible, inside
    /// a word only when the word alone is wider (hashes, long addresses).
    pub fn wrap(&self, text: &str, style: Style, width: f32) -> Vec<String> {
        let space = self.width(" ", style);
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut line_width = 0.0;
        for word in text.split(' ').filter(|word| !word.is_empty()) {
            let word_width = self.width(word, style);
            if word_width > width {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let mut pieces = self.break_word(word, style, width);
                let last = pieces.pop().unwrap_or_default();
                lines.extend(pieces);
                line_width = self.width(&last, style);
                line = last;
                continue;
            }
            if line.is_empty() {
                line.push_str(word);
                line_width = word_width;
            } else if line_width + space + word_width <= width {
                line.push(' ');
                line.push_str(word);
                line_width += space + word_width;
            } else {
                lines.push(std::mem::replace(&mut line, word.to_string()));
                line_width = word_width;
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }

    fn break_word(&self, word: &str, style: Style, width: f32) -> Vec<String> {
        let face = self.face(style.weight);
        let mut pieces = vec![String::new()];
        let mut piece_width = 0.0;
        for ch in word.chars() {
            let advance = face.advance(ch) * style.size;
            let current_is_empty = pieces.last().is_none_or(String::is_empty);
            if piece_width + advance > width && !current_is_empty {
                pieces.push(String::new());
                piece_width = 0.0;
            }
            if let Some(piece) = pieces.last_mut() {
                piece.push(ch);
            }
            piece_width += advance;
        }
        pieces
    }
}

/// What is drawn on a page, in points from the top left corner.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Text {
        x: f32,
        baseline: f32,
        style: Style,
        text: String,
    },
    Image {
        x: f32,
        top: f32,
        width: f32,
        height: f32,
        image: Image,
    },
    Rule {
        top: f32,
    },
}

/// Places blocks from the top of the first page down, breaking pages as needed.
pub(super) struct Flow {
    fonts: Fonts,
    pages: Vec<Vec<Op>>,
    top: f32,
}

impl Flow {
    pub fn new(fonts: Fonts) -> Self {
        Self {
            fonts,
            pages: vec![Vec::new()],
            top: MARGIN_TOP,
        }
    }

    fn at_page_top(&self) -> bool {
        self.top <= MARGIN_TOP
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.top = MARGIN_TOP;
    }

    /// Starts a new page unless `height` more fits on this one (or this one is empty:
    /// a block taller than a page is split by its lines instead).
    fn ensure(&mut self, height: f32) {
        if self.top + height > BODY_BOTTOM && !self.at_page_top() {
            self.new_page();
        }
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    fn text_at(&mut self, x: f32, style: Style, text: String) {
        if text.is_empty() {
            return;
        }
        let baseline = self.top + style.size * ASCENT;
        self.push(Op::Text {
            x,
            baseline,
            style,
            text,
        });
    }

    pub fn space(&mut self, points: f32) {
        if !self.at_page_top() {
            self.top += points;
        }
    }

    /// Wrapped lines at the left margin, then a small gap.
    pub fn paragraph(&mut self, text: &str, style: Style) {
        self.lines_at(MARGIN_X, CONTENT_WIDTH, text, style, 0.0);
        self.space(style.size * 0.5);
    }

    /// `text` wrapped into `width` at `x`, continuation lines indented by `hang`.
    fn lines_at(&mut self, x: f32, width: f32, text: &str, style: Style, hang: f32) {
        let first = self.fonts.wrap(text, style, width);
        let mut lines = first.into_iter();
        let Some(head) = lines.next() else {
            return;
        };
        let rest: String = lines.collect::<Vec<_>>().join(" ");
        self.ensure(style.line_height());
        self.text_at(x, style, head);
        self.top += style.line_height();
        if rest.is_empty() {
            return;
        }
        // The rest is wrapped again at the narrower width of the hanging indent.
        for line in self.fonts.wrap(&rest, style, width - hang) {
            self.ensure(style.line_height());
            self.text_at(x + hang, style, line);
            self.top += style.line_height();
        }
    }

    pub fn title(&mut self, text: &str) {
        self.paragraph(text, Style::TITLE);
    }

    /// A heading kept together with at least two lines of what follows it.
    pub fn heading(&mut self, text: &str) {
        self.space(Style::HEADING.size * 0.8);
        self.ensure(Style::HEADING.line_height() + 3.0 * Style::BODY.line_height());
        self.lines_at(MARGIN_X, CONTENT_WIDTH, text, Style::HEADING, 0.0);
        self.space(Style::HEADING.size * 0.3);
    }

    /// Plain text as `html_to_text` writes it: a line per line, blank lines between
    /// paragraphs, list items (`- `, `1. `) and quotes (`> `) with a hanging indent.
    pub fn text_block(&mut self, text: &str) {
        let mut blank_before = false;
        for raw in text.lines() {
            let line = clean_line(raw);
            if line.trim().is_empty() {
                blank_before = true;
                continue;
            }
            if blank_before {
                self.space(Style::BODY.size * 0.6);
                blank_before = false;
            }
            let trimmed = line.trim_start_matches(' ');
            let leading = &line[..line.len() - trimmed.len()];
            let indent = self
                .fonts
                .width(leading, Style::BODY)
                .min(CONTENT_WIDTH / 4.0);
            let marker = split_marker(trimmed);
            let hang = self.fonts.width(marker, Style::BODY);
            let hang = if hang < CONTENT_WIDTH / 2.0 {
                hang
            } else {
                0.0
            };
            self.lines_at(
                MARGIN_X + indent,
                CONTENT_WIDTH - indent,
                trimmed,
                Style::BODY,
                hang,
            );
        }
        self.space(Style::BODY.size * 0.6);
    }

    /// A label in the left column and its value, wrapped, in the right one.
    pub fn pair(&mut self, label: &str, value: &str, value_style: Style) {
        let value_x = MARGIN_X + LABEL_WIDTH + COLUMN_GAP;
        let value_width = CONTENT_WIDTH - LABEL_WIDTH - COLUMN_GAP;
        let labels = self.fonts.wrap(label, Style::MUTED, LABEL_WIDTH);
        let values: Vec<String> = value
            .lines()
            .flat_map(|line| self.fonts.wrap(&clean_line(line), value_style, value_width))
            .collect();
        let line_height = Style::MUTED.line_height().max(value_style.line_height());
        let rows = labels.len().max(values.len()).max(1);
        // Short pairs stay on one page; a long value flows on line by line.
        self.ensure(line_height * rows.min(4) as f32);
        let mut labels = labels.into_iter();
        let mut values = values.into_iter();
        for _ in 0..rows {
            self.ensure(line_height);
            if let Some(label) = labels.next() {
                self.text_at(MARGIN_X, Style::MUTED, label);
            }
            if let Some(value) = values.next() {
                self.text_at(value_x, value_style, value);
            }
            self.top += line_height;
        }
        self.top += 2.0;
    }

    /// A table with a header row (repeated on each new page), one rule under the
    /// header and a light one between rows; cells wrap within their columns.
    pub fn table(&mut self, columns: &[Column], header: &[String], rows: &[Vec<String>]) {
        let widths = column_widths(columns);
        let header_style = |column: &Column| Style {
            weight: Weight::Bold,
            gray: 0,
            ..column.style
        };
        let header_cells: Vec<Vec<String>> = columns
            .iter()
            .zip(header)
            .zip(&widths)
            .map(|((column, text), width)| self.fonts.wrap(text, header_style(column), *width))
            .collect();
        let header_styles: Vec<Style> = columns.iter().map(header_style).collect();
        let body_styles: Vec<Style> = columns.iter().map(|column| column.style).collect();
        let header_height = row_height(&header_cells, &header_styles);
        let first_row_height = rows.first().map_or(0.0, |row| {
            row_height(&self.wrap_row(columns, &widths, row), &body_styles)
        });
        self.ensure(header_height + first_row_height.min(BODY_BOTTOM / 3.0) + 6.0);
        self.table_row(columns, &widths, &header_cells, &header_styles);
        self.rule();
        for row in rows {
            let cells = self.wrap_row(columns, &widths, row);
            let height = row_height(&cells, &body_styles);
            if self.top + height > BODY_BOTTOM && height < BODY_BOTTOM - MARGIN_TOP {
                self.new_page();
                self.table_row(columns, &widths, &header_cells, &header_styles);
                self.rule();
            }
            self.table_row(columns, &widths, &cells, &body_styles);
            self.top += 2.0;
        }
    }

    fn wrap_row(&self, columns: &[Column], widths: &[f32], row: &[String]) -> Vec<Vec<String>> {
        columns
            .iter()
            .zip(row)
            .zip(widths)
            .map(|((column, text), width)| self.fonts.wrap(&clean_line(text), column.style, *width))
            .collect()
    }

    fn table_row(
        &mut self,
        columns: &[Column],
        widths: &[f32],
        cells: &[Vec<String>],
        styles: &[Style],
    ) {
        let line_height = styles
            .iter()
            .map(|style| style.line_height())
            .fold(0.0, f32::max);
        let rows = cells.iter().map(Vec::len).max().unwrap_or(1);
        for index in 0..rows {
            self.ensure(line_height);
            let mut x = MARGIN_X;
            for ((column, width), (lines, style)) in
                columns.iter().zip(widths).zip(cells.iter().zip(styles))
            {
                if let Some(line) = lines.get(index) {
                    let line_x = match column.align {
                        Align::Left => x,
                        Align::Right => x + width - self.fonts.width(line, *style),
                    };
                    self.text_at(line_x, *style, line.clone());
                }
                x += width + COLUMN_GAP;
            }
            self.top += line_height;
        }
    }

    /// A text pushed to the right margin, for totals.
    pub fn right_aligned(&mut self, text: &str, style: Style) {
        self.ensure(style.line_height());
        let x = MARGIN_X + CONTENT_WIDTH - self.fonts.width(text, style);
        self.text_at(x.max(MARGIN_X), style, text.to_string());
        self.top += style.line_height();
    }

    pub fn rule(&mut self) {
        let top = self.top + 1.0;
        self.push(Op::Rule { top });
        self.top += 4.0;
    }

    /// An image at the left margin, scaled down (never up) to fit `max_width` by
    /// `max_height`, aspect kept.
    pub fn image(&mut self, image: Image, max_width: f32, max_height: f32) {
        let (pixels_wide, pixels_high) = image.size();
        let (pixels_wide, pixels_high) = (pixels_wide.max(1) as f32, pixels_high.max(1) as f32);
        // A signature pad's pixels are small; 96 dpi keeps a small drawing small.
        let natural_width = pixels_wide * 0.75;
        let scale = (max_width / natural_width)
            .min(max_height / (pixels_high * 0.75))
            .min(1.0);
        let width = natural_width * scale;
        let height = pixels_high * 0.75 * scale;
        self.ensure(height);
        let top = self.top;
        self.push(Op::Image {
            x: MARGIN_X,
            top,
            width,
            height,
            image,
        });
        self.top += height + 4.0;
    }

    /// The laid out pages, and the fonts to draw them with.
    pub fn finish(self) -> (Fonts, Vec<Vec<Op>>) {
        (self.fonts, self.pages)
    }
}

fn column_widths(columns: &[Column]) -> Vec<f32> {
    let gaps = COLUMN_GAP * columns.len().saturating_sub(1) as f32;
    let fixed: f32 = columns.iter().filter_map(|column| column.width).sum();
    let flexible = columns
        .iter()
        .filter(|column| column.width.is_none())
        .count();
    let share = ((CONTENT_WIDTH - gaps - fixed) / flexible.max(1) as f32).max(20.0);
    columns
        .iter()
        .map(|column| column.width.unwrap_or(share))
        .collect()
}

fn row_height(cells: &[Vec<String>], styles: &[Style]) -> f32 {
    let line_height = styles
        .iter()
        .map(|style| style.line_height())
        .fold(0.0, f32::max);
    cells.iter().map(Vec::len).max().unwrap_or(1) as f32 * line_height
}

/// Tabs as spaces and other control characters dropped: the font has no glyph for them.
fn clean_line(line: &str) -> String {
    line.chars()
        .filter_map(|ch| match ch {
            '\t' => Some(' '),
            ch if ch.is_control() => None,
            ch => Some(ch),
        })
        .collect()
}

/// A line's quote and list markers (`> - `, `3. `): continuation lines are indented
/// by their width.
fn split_marker(line: &str) -> &str {
    let mut rest = line;
    while let Some(after) = rest.strip_prefix("> ") {
        rest = after;
    }
    if let Some(after) = rest.strip_prefix("- ") {
        rest = after;
    } else if let Some(dot) = rest.find(". ") {
        if dot > 0 && dot <= 3 && rest[..dot].bytes().all(|b| b.is_ascii_digit()) {
            rest = &rest[dot + 2..];
        }
    }
    &line[..line.len() - rest.len()]
}

/// The footer of a page: a text at the left and the page count at the right.
pub(super) struct Footer<'a> {
    pub left: &'a str,
    /// `Seite {page} von {pages}`, filled per page.
    pub page_of: &'a dyn Fn(usize, usize) -> String,
}

/// Writes the laid out pages as a PDF, with `attachment` as an embedded file.
pub(super) fn render(
    fonts: &Fonts,
    pages: Vec<Vec<Op>>,
    footer: &Footer<'_>,
    metadata: Metadata,
    attachment: Option<EmbeddedFile>,
) -> Result<Vec<u8>, PdfError> {
    let mut document = krilla::Document::new();
    document.set_metadata(metadata);
    if let Some(file) = attachment {
        document
            .embed_file(file)
            .ok_or(PdfError::Layout("the attachment was embedded twice"))?;
    }
    let settings =
        PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).ok_or(PdfError::Layout("page size"))?;
    let count = pages.len();
    for (index, ops) in pages.into_iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, fonts, op)?;
        }
        let left = footer.left.to_string();
        let right = (footer.page_of)(index + 1, count);
        let right_x = MARGIN_X + CONTENT_WIDTH - fonts.width(&right, Style::MUTED);
        for (x, text) in [(MARGIN_X, left), (right_x, right)] {
            draw(
                &mut surface,
                fonts,
                Op::Text {
                    x,
                    baseline: FOOTER_BASELINE,
                    style: Style::MUTED,
                    text,
                },
            )?;
        }
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|error| PdfError::Write(error.to_string()))
}

fn draw(surface: &mut krilla::surface::Surface<'_>, fonts: &Fonts, op: Op) -> Result<(), PdfError> {
    match op {
        Op::Text {
            x,
            baseline,
            style,
            text,
        } => {
            surface.set_fill(Some(Fill {
                paint: luma::Color::new(style.gray).into(),
                opacity: NormalizedF32::ONE,
                rule: Default::default(),
            }));
            surface.draw_text(
                Point::from_xy(x, baseline),
                fonts.face(style.weight).font.clone(),
                style.size,
                &text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Image {
            x,
            top,
            width,
            height,
            image,
        } => {
            let size = Size::from_wh(width, height).ok_or(PdfError::Layout("image size"))?;
            surface.push_transform(&Transform::from_translate(x, top));
            surface.draw_image(image, size);
            surface.pop();
        }
        Op::Rule { top } => {
            let mut builder = PathBuilder::new();
            builder.move_to(MARGIN_X, top);
            builder.line_to(MARGIN_X + CONTENT_WIDTH, top);
            let path = builder.finish().ok_or(PdfError::Layout("rule"))?;
            surface.set_fill(None);
            surface.set_stroke(Some(Stroke {
                paint: luma::Color::new(160).into(),
                width: 0.5,
                ..Default::default()
            }));
            surface.draw_path(&path);
            surface.set_stroke(None);
        }
    }
    Ok(())
}
