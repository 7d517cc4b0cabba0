//! The tantivy index: schema, writing, and query building.
//!
//! Schema choices, and why:
//! - One document per record, keyed by `kind:record_id`, so upsert is
//!   "delete term + add" and hits/totals are records.
//! - Each history entry is a separate value of a multi-valued field, which
//!   puts a position gap between entries: a phrase never matches across two
//!   messages.
//! - Text is indexed twice, German-analysed (`*_de`) and English-analysed
//!   (`*_en`), for every record whatever its locale, and queries search both.
//!   Locale is often wrong (an English reply in a German ticket, a customer
//!   writing German to an English-configured account); analysing per record
//!   locale would make "Kassen" miss a German ticket that happens to carry
//!   "en". The cost is roughly double the postings, which the benchmark shows
//!   to be affordable. Only the `*_de` fields store the original text; the
//!   English snippet generator re-analyses that same stored text.
//! - Public and internal text live in different fields. Contact queries never
//!   name the internal fields, so internal text can neither match nor reach a
//!   contact's snippet.
//! - Access control is a non-scoring clause inside the query, so counting and
//!   paging happen after it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, PhraseQuery, Query,
    TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value,
    STORED, STRING,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument,
    TantivyError, Term,
};

use super::analysis::{self, TOKENIZER_DE, TOKENIZER_EN, TOKENIZER_FOLD};
use super::query::{parse_query, ParsedQuery};
use super::{
    Hit, IndexDoc, RecordKind, SearchError, SearchQuery, SearchResults, Viewer, MAX_LIMIT,
};

/// How the index is written: as the server feeds it, or rebuilt in bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexWriting {
    /// The changelog feed: one indexing thread, so a commit makes one segment (two
    /// threads split every small commit into two segments, which then merge), and
    /// a budget that bounds what the process holds between commits.
    Live,
    /// `reindex`: every core and a large budget, for fewer, larger segments.
    Bulk,
}

/// The live writer's memory budget: what it may hold between two commits before it
/// writes a segment anyway.
const LIVE_WRITER_HEAP_BYTES: usize = 32_000_000;
/// `reindex`'s budget, shared by the indexing threads (tantivy picks as many as the
/// cores, and fewer when each would get less than its minimum).
const BULK_WRITER_HEAP_BYTES: usize = 100_000_000;

/// Segments below this many documents are merged by size levels rather than all
/// together: tantivy's default (10,000) puts every small segment of a live index
/// in one level, so each merge rewrites everything merged before.
const MIN_MERGE_LAYER_DOCS: u32 = 500;
/// Subject hits must outrank history hits; BM25 on the short title already
/// helps, the boost makes it dominate repeated mentions in a long history.
const TITLE_BOOST: f32 = 4.0;
/// Requester/company names are secondary evidence for a free-text word.
const NAMES_BOOST: f32 = 0.5;
/// Typing a record's number should put that record first.
const NUMBER_BOOST: f32 = 8.0;
const SNIPPET_CHARS: usize = 200;
const PAYLOAD_PREFIX: &str = "applied_seq=";

struct Fields {
    key: Field,
    kind: Field,
    record_id: Field,
    number: Field,
    locale: Field,
    title_de: Field,
    title_en: Field,
    body_de: Field,
    body_en: Field,
    internal_de: Field,
    internal_en: Field,
    names: Field,
    company_name: Field,
    company_id: Field,
    reseller_id: Field,
    audience: Field,
    status: Field,
    updated_at: Field,
}

fn text(tokenizer: &str, positions: bool, stored: bool) -> TextOptions {
    let record = if positions {
        IndexRecordOption::WithFreqsAndPositions
    } else {
        IndexRecordOption::WithFreqs
    };
    let opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record),
    );
    if stored {
        opts.set_stored()
    } else {
        opts
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        key: b.add_text_field("key", STRING),
        kind: b.add_text_field("kind", STRING | STORED),
        record_id: b.add_text_field("record_id", STRING | STORED),
        number: b.add_u64_field(
            "number",
            NumericOptions::default().set_indexed().set_stored(),
        ),
        locale: b.add_text_field("locale", STORED),
        title_de: b.add_text_field("title_de", text(TOKENIZER_DE, true, true)),
        title_en: b.add_text_field("title_en", text(TOKENIZER_EN, true, false)),
        body_de: b.add_text_field("body_de", text(TOKENIZER_DE, true, true)),
        body_en: b.add_text_field("body_en", text(TOKENIZER_EN, true, false)),
        internal_de: b.add_text_field("internal_de", text(TOKENIZER_DE, true, true)),
        internal_en: b.add_text_field("internal_en", text(TOKENIZER_EN, true, false)),
        names: b.add_text_field("names", text(TOKENIZER_FOLD, false, false)),
        company_name: b.add_text_field("company_name", text(TOKENIZER_FOLD, true, false)),
        company_id: b.add_text_field("company_id", STRING),
        reseller_id: b.add_text_field("reseller_id", STRING),
        audience: b.add_text_field("audience", STRING),
        status: b.add_text_field("status", STRING),
        updated_at: b.add_i64_field("updated_at", NumericOptions::default().set_fast()),
    };
    (b.build(), fields)
}

fn record_key(kind: RecordKind, record_id: &str) -> String {
    format!("{}:{record_id}", kind.as_str())
}

/// Status values are matched case-insensitively; the engine's spelling of a
/// status need not match what users type.
fn status_key(status: &str) -> String {
    status.trim().to_lowercase()
}

/// The search index of one engine instance.
///
/// Cheap to share (`&self` everywhere): writes are serialised on an internal
/// mutex, searches run concurrently on the last committed state.
pub struct SearchIndex {
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    applied_seq: AtomicU64,
    de: TextAnalyzer,
    en: TextAnalyzer,
    fold: TextAnalyzer,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if
    /// missing.
    ///
    /// Fails with [`SearchError::IncompatibleSchema`] if the directory holds
    /// an index of another schema version; the caller should then delete the
    /// directory and rebuild from the changelog.
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        Self::open_for(dir, IndexWriting::Live)
    }

    /// [`open`](Self::open), with the writer set up for `writing`.
    pub fn open_for(dir: &Path, writing: IndexWriting) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(TantivyError::from)?;
        let mut index = match Index::open_or_create(directory, schema) {
            Err(TantivyError::SchemaError(_)) => return Err(SearchError::IncompatibleSchema),
            other => other?,
        };
        analysis::register(index.tokenizers());
        // Segments are searched in parallel: a heavy query (a phrase of two
        // common words, counted over the whole index) then takes a fraction
        // of the wall time.
        index.set_default_multithread_executor()?;
        let applied = parse_payload(index.load_metas()?.payload.as_deref())?;
        let writer: IndexWriter = match writing {
            IndexWriting::Live => index.writer_with_num_threads(1, LIVE_WRITER_HEAP_BYTES)?,
            IndexWriting::Bulk => index.writer(BULK_WRITER_HEAP_BYTES)?,
        };
        let mut merges = tantivy::indexer::LogMergePolicy::default();
        merges.set_min_layer_size(MIN_MERGE_LAYER_DOCS);
        writer.set_merge_policy(Box::new(merges));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let tokenizer = |name: &str| {
            index
                .tokenizers()
                .get(name)
                .expect("analysis::register registered it")
        };
        let (de, en, fold) = (
            tokenizer(TOKENIZER_DE),
            tokenizer(TOKENIZER_EN),
            tokenizer(TOKENIZER_FOLD),
        );
        tracing::info!(dir = %dir.display(), applied_seq = applied, "search index opened");
        Ok(SearchIndex {
            fields,
            writer: Mutex::new(writer),
            reader,
            applied_seq: AtomicU64::new(applied),
            de,
            en,
            fold,
        })
    }

    /// Replaces everything indexed for the record. Visible after the next
    /// [`commit`](Self::commit).
    pub fn upsert(&self, doc: &IndexDoc) -> Result<(), SearchError> {
        let f = &self.fields;
        let key = record_key(doc.kind, &doc.record_id);
        let mut d = TantivyDocument::new();
        d.add_text(f.key, &key);
        d.add_text(f.kind, doc.kind.as_str());
        d.add_text(f.record_id, &doc.record_id);
        if let Some(n) = doc.number {
            d.add_u64(f.number, n);
        }
        d.add_text(f.locale, &doc.locale);
        d.add_text(f.title_de, &doc.title);
        d.add_text(f.title_en, &doc.title);
        for entry in &doc.entries {
            let mut text = entry.text.clone();
            for name in &entry.attachment_names {
                text.push('\n');
                text.push_str(name);
            }
            if text.trim().is_empty() {
                continue;
            }
            let (de, en) = if entry.internal {
                (f.internal_de, f.internal_en)
            } else {
                (f.body_de, f.body_en)
            };
            d.add_text(en, &text);
            d.add_text(de, text);
        }
        d.add_text(f.names, &doc.requester);
        if let Some(name) = &doc.company_name {
            d.add_text(f.names, name);
            d.add_text(f.company_name, name);
        }
        for (field, value) in [
            (f.company_id, &doc.company_id),
            (f.reseller_id, &doc.reseller_id),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                d.add_text(field, v);
            }
        }
        for c in doc.audience.iter().filter(|c| !c.is_empty()) {
            d.add_text(f.audience, c);
        }
        d.add_text(f.status, status_key(&doc.status));
        d.add_i64(f.updated_at, doc.updated_at);

        let writer = self.writer();
        // Deletes only hit documents added before them, so the new version
        // survives even though both land in the same commit.
        writer.delete_term(Term::from_field_text(f.key, &key));
        writer.add_document(d)?;
        Ok(())
    }

    /// Removes the record. Visible after the next [`commit`](Self::commit).
    pub fn delete(&self, kind: RecordKind, record_id: &str) -> Result<(), SearchError> {
        let term = Term::from_field_text(self.fields.key, &record_key(kind, record_id));
        self.writer().delete_term(term);
        Ok(())
    }

    /// Makes all changes since the last commit durable and visible, recording
    /// `applied_seq` (the last changelog sequence they reflect) in the same
    /// atomic commit, so after a crash the index and its seq never disagree.
    pub fn commit(&self, applied_seq: u64) -> Result<(), SearchError> {
        let mut writer = self.writer();
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&format!("{PAYLOAD_PREFIX}{applied_seq}"));
        prepared.commit()?;
        // Reload while still holding the writer lock so a concurrent commit
        // cannot make applied_seq run ahead of what readers see.
        self.reader.reload()?;
        self.applied_seq.store(applied_seq, Ordering::Release);
        tracing::debug!(applied_seq, "search index committed");
        Ok(())
    }

    /// The changelog sequence of the last commit; 0 for a fresh index.
    /// Resume feeding from the entry after it.
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq.load(Ordering::Acquire)
    }

    /// Runs a query as `viewer`. Only records the viewer may see are matched
    /// and counted; contacts never match or see internal text.
    pub fn search(
        &self,
        viewer: &Viewer,
        query: &SearchQuery,
    ) -> Result<SearchResults, SearchError> {
        let parsed = parse_query(&query.q)?;
        let staff = matches!(viewer, Viewer::Staff);
        let Some((tantivy_query, ranked)) = self.build_query(viewer, &parsed, query.kind) else {
            return Ok(SearchResults {
                total: 0,
                hits: Vec::new(),
            });
        };
        let searcher = self.reader.searcher();
        let limit = query.limit.min(MAX_LIMIT);
        if limit == 0 {
            let total = searcher.search(&*tantivy_query, &Count)?;
            return Ok(SearchResults {
                total,
                hits: Vec::new(),
            });
        }
        let top = TopDocs::with_limit(limit).and_offset(query.offset);
        let (total, docs): (usize, Vec<(f32, DocAddress)>) = if ranked {
            searcher.search(&*tantivy_query, &(Count, top.order_by_score()))?
        } else {
            // Without words there is no relevance; recency is what a
            // "status:open" list is read by.
            let (total, docs) = searcher.search(
                &*tantivy_query,
                &(
                    Count,
                    top.order_by_fast_field::<i64>("updated_at", tantivy::Order::Desc),
                ),
            )?;
            (total, docs.into_iter().map(|(_, a)| (0.0, a)).collect())
        };
        let snippets = if ranked {
            Some(self.snippet_generators(&searcher, &*tantivy_query, staff)?)
        } else {
            None
        };
        let mut hits = Vec::with_capacity(docs.len());
        for (score, addr) in docs {
            let doc: TantivyDocument = searcher.doc(addr)?;
            hits.push(self.hit(&doc, score, snippets.as_ref(), staff)?);
        }
        Ok(SearchResults { total, hits })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        // A panic elsewhere while holding the lock leaves tantivy's writer
        // itself consistent (uncommitted ops are just pending), so carry on.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the query and whether it is relevance-ranked, or None if it
    /// can match nothing (words without any letter or digit, contradictory
    /// kinds).
    fn build_query(
        &self,
        viewer: &Viewer,
        parsed: &ParsedQuery,
        kind: Option<RecordKind>,
    ) -> Option<(Box<dyn Query>, bool)> {
        let f = &self.fields;
        let staff = matches!(viewer, Viewer::Staff);
        let access = match viewer {
            Viewer::Staff => None,
            Viewer::Contact { .. } => Some(self.access_filter(viewer)?),
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();

        for word in &parsed.words {
            if let Some(q) = self.text_clause(word, false, staff, access.as_deref()) {
                clauses.push((Occur::Must, q));
            }
        }
        for phrase in &parsed.phrases {
            if let Some(q) = self.text_clause(phrase, true, staff, access.as_deref()) {
                clauses.push((Occur::Must, q));
            }
        }
        let ranked = !clauses.is_empty();
        if parsed.has_text() && !ranked {
            // Only punctuation: matching everything would be a surprising
            // answer to "?!".
            return None;
        }

        let mut filters: Vec<Box<dyn Query>> = Vec::new();
        if !parsed.statuses.is_empty() {
            filters.push(any_of(
                parsed
                    .statuses
                    .iter()
                    .map(|s| term(f.status, &status_key(s)))
                    .collect(),
            ));
        }
        if !parsed.companies.is_empty() {
            let mut alternatives = Vec::new();
            for c in &parsed.companies {
                alternatives.push(term(f.company_id, c.trim()));
                if let Some(q) = analysed(&self.fold, f.company_name, c) {
                    alternatives.push(q);
                }
            }
            filters.push(any_of(alternatives));
        }
        let mut kinds: BTreeSet<&'static str> = parsed.kinds.iter().map(|k| k.as_str()).collect();
        if let Some(k) = kind {
            if !kinds.is_empty() && !kinds.contains(k.as_str()) {
                return None;
            }
            kinds = BTreeSet::from([k.as_str()]);
        }
        if !kinds.is_empty() {
            filters.push(any_of(kinds.iter().map(|k| term(f.kind, k)).collect()));
        }
        // The access filter also sits at the top level: it is the one clause
        // that must hold for every hit, whatever the text clauses do.
        filters.extend(access);
        for filter in filters {
            // Zero score: filters decide membership, never ranking.
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))));
        }
        let query: Box<dyn Query> = if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        };
        Some((query, ranked))
    }

    /// Records a contact may see, or None if it may see none.
    fn access_filter(&self, viewer: &Viewer) -> Option<Box<dyn Query>> {
        let f = &self.fields;
        let Viewer::Contact { audience } = viewer else {
            return Some(Box::new(AllQuery));
        };
        let allowed: Vec<Box<dyn Query>> = audience
            .iter()
            .filter(|token| !token.is_empty())
            .map(|token| term(f.audience, token))
            .collect();
        (!allowed.is_empty()).then(|| any_of(allowed))
    }

    /// One word or phrase, matched in any text field the viewer may search,
    /// in either language's analysis. None if no analysis yields a token.
    ///
    /// `within` (the contact's access filter) is repeated inside every field
    /// alternative. A union of phrase scorers can only be seeked by scanning
    /// each phrase forward to its next match, so with the filter outside
    /// the union a contact's phrase search costs as much as staff's over the
    /// whole index; inside, each phrase is only checked on the filter's docs.
    fn text_clause(
        &self,
        text: &str,
        phrase: bool,
        staff: bool,
        within: Option<&dyn Query>,
    ) -> Option<Box<dyn Query>> {
        let f = &self.fields;
        let mut targets = vec![
            (&self.de, f.title_de, TITLE_BOOST),
            (&self.en, f.title_en, TITLE_BOOST),
            (&self.de, f.body_de, 1.0),
            (&self.en, f.body_en, 1.0),
        ];
        if staff {
            targets.push((&self.de, f.internal_de, 1.0));
            targets.push((&self.en, f.internal_en, 1.0));
        }
        if !phrase {
            targets.push((&self.fold, f.names, NAMES_BOOST));
        }
        let mut alternatives: Vec<Box<dyn Query>> = Vec::new();
        for (analyzer, field, boost) in targets {
            if let Some(q) = analysed(analyzer, field, text) {
                alternatives.push(restricted(boosted(q, boost), within));
            }
        }
        if !phrase && !alternatives.is_empty() {
            let digits = text.strip_prefix('#').unwrap_or(text);
            if let Ok(n) = digits.parse::<u64>() {
                let q = TermQuery::new(Term::from_field_u64(f.number, n), IndexRecordOption::Basic);
                alternatives.push(restricted(boosted(Box::new(q), NUMBER_BOOST), within));
            }
        }
        match alternatives.len() {
            0 => None,
            1 => alternatives.pop(),
            _ => Some(Box::new(BooleanQuery::union(alternatives))),
        }
    }

    fn snippet_generators(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        staff: bool,
    ) -> Result<Snippets, SearchError> {
        let f = &self.fields;
        let make = |field: Field| -> Result<SnippetGenerator, SearchError> {
            let mut g = SnippetGenerator::create(searcher, query, field)?;
            g.set_max_num_chars(SNIPPET_CHARS);
            Ok(g)
        };
        let internal = if staff {
            Some((make(f.internal_de)?, make(f.internal_en)?))
        } else {
            None
        };
        Ok(Snippets {
            body: (make(f.body_de)?, make(f.body_en)?),
            internal,
        })
    }

    fn hit(
        &self,
        doc: &TantivyDocument,
        score: f32,
        snippets: Option<&Snippets>,
        staff: bool,
    ) -> Result<Hit, SearchError> {
        let f = &self.fields;
        let str_of = |field: Field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or("");
        let joined = |field: Field| {
            doc.get_all(field)
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let kind: RecordKind = str_of(f.kind).parse()?;
        let body = joined(f.body_de);
        let english_first = str_of(f.locale).eq_ignore_ascii_case("en");

        let mut snippet = None;
        if let Some(s) = snippets {
            let mut candidates: Vec<(&SnippetGenerator, &SnippetGenerator, String)> =
                vec![(&s.body.0, &s.body.1, body.clone())];
            if let (true, Some(internal)) = (staff, &s.internal) {
                candidates.push((&internal.0, &internal.1, joined(f.internal_de)));
            }
            'outer: for (de, en, text) in &candidates {
                if text.is_empty() {
                    continue;
                }
                let order = if english_first { [en, de] } else { [de, en] };
                for generator in order {
                    let s = generator.snippet(text);
                    if !s.highlighted().is_empty() {
                        snippet = Some(s.to_html());
                        break 'outer;
                    }
                }
            }
        }
        let snippet = snippet.unwrap_or_else(|| leading_text(&body, SNIPPET_CHARS));

        Ok(Hit {
            kind,
            id: str_of(f.record_id).to_string(),
            number: doc.get_first(f.number).and_then(|v| v.as_u64()),
            title: str_of(f.title_de).to_string(),
            snippet,
            score,
        })
    }
}

struct Snippets {
    body: (SnippetGenerator, SnippetGenerator),
    internal: Option<(SnippetGenerator, SnippetGenerator)>,
}

fn term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

fn any_of(mut queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    match queries.len() {
        0 => Box::new(EmptyQuery),
        1 => queries.pop().expect("one element"),
        _ => Box::new(BooleanQuery::union(queries)),
    }
}

fn restricted(q: Box<dyn Query>, within: Option<&dyn Query>) -> Box<dyn Query> {
    match within {
        None => q,
        Some(filter) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, q),
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(filter.box_clone(), 0.0)),
            ),
        ])),
    }
}

fn boosted(q: Box<dyn Query>, boost: f32) -> Box<dyn Query> {
    if boost == 1.0 {
        q
    } else {
        Box::new(BoostQuery::new(q, boost))
    }
}

/// Analyses `text` like `field` is indexed and builds a term query for one
/// token or a positional phrase query for several. Positions come from the
/// analyzer, relative to the first token.
fn analysed(analyzer: &TextAnalyzer, field: Field, text: &str) -> Option<Box<dyn Query>> {
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut terms: Vec<(usize, Term)> = Vec::new();
    while let Some(token) = stream.next() {
        terms.push((token.position, Term::from_field_text(field, &token.text)));
    }
    match terms.len() {
        0 => None,
        1 => Some(Box::new(TermQuery::new(
            terms.pop().expect("one element").1,
            IndexRecordOption::WithFreqs,
        ))),
        _ => {
            let first = terms[0].0;
            let terms = terms.into_iter().map(|(p, t)| (p - first, t)).collect();
            Some(Box::new(PhraseQuery::new_with_offset(terms)))
        }
    }
}

fn parse_payload(payload: Option<&str>) -> Result<u64, SearchError> {
    match payload {
        None => Ok(0),
        Some(p) => p
            .strip_prefix(PAYLOAD_PREFIX)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| SearchError::CorruptPayload(p.to_string())),
    }
}

/// Fallback snippet when no searched word is in the text (title-only or
/// number match): the start of the public text, escaped like tantivy's.
fn leading_text(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (taken, ch) in text.chars().enumerate() {
        if taken == max_chars {
            out.push('…');
            break;
        }
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
