//! Text analysis: the tokenizer chains registered with the index.
//!
//! Every chain is used for both indexing and querying, so whatever folding it
//! does is symmetric and a user's spelling ("Grüße", "Gruesse", "Grusse")
//! meets the stored spelling in the same normal form.
//!
//! No stop words are removed. The German list holds "kein" and "nicht",
//! which carry the meaning of a support message ("druckt nicht"), and a
//! stop word dropped by one language's chain but not the other's turns a
//! phrase into a bag of words in one field, so `"kein Papier"` would match
//! any text with "Papier".

use std::collections::HashMap;
use std::mem;
use std::sync::{Arc, Mutex};

use frostem::Algorithm;
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, Token,
    TokenFilter, TokenStream, Tokenizer, TokenizerManager,
};

/// German: folded and German-stemmed.
pub(crate) const TOKENIZER_DE: &str = "kontor_de";
/// English: folded and English-stemmed.
pub(crate) const TOKENIZER_EN: &str = "kontor_en";
/// Names (requester, company): folded like German but not stemmed, because
/// stemming proper names only produces false matches ("Meier" ~ "Meiers").
pub(crate) const TOKENIZER_FOLD: &str = "kontor_fold";

/// Tokens longer than this are base64 blobs, hashes or pasted logs; indexing
/// them only bloats the term dictionary.
const MAX_TOKEN_LEN: usize = 40;

pub(crate) fn register(manager: &TokenizerManager) {
    manager.register(TOKENIZER_DE, german());
    manager.register(TOKENIZER_EN, english());
    manager.register(TOKENIZER_FOLD, names());
}

fn german() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(GermanDigraphFolding)
        .filter(CachedStemmer::new(Algorithm::German))
        .build()
}

fn english() -> TextAnalyzer {
    // No digraph folding here: "issue"/"issues" must keep their "ue" for the
    // English stemmer to conflate them; German spellings are the German
    // field's job.
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(CachedStemmer::new(Algorithm::English))
        .build()
}

fn names() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(GermanDigraphFolding)
        .build()
}

/// Stems remembered per language before the memo starts afresh: a few MB, and far
/// more distinct words than a helpdesk's mail uses in a day.
const MAX_REMEMBERED_STEMS: usize = 100_000;

/// The snowball stemmer (what tantivy's `Stemmer` filter runs), remembering each
/// word's stem. Stemming was most of what indexing a message cost, and mail repeats
/// its words: most tokens are then one lookup. The memo is shared by every clone of
/// the analyser (each indexing thread and query gets one) and gives the same stems
/// as the stemmer, so queries and the index still agree.
#[derive(Clone)]
pub(crate) struct CachedStemmer {
    algorithm: Algorithm,
    stems: Arc<Mutex<HashMap<String, String>>>,
}

impl CachedStemmer {
    fn new(algorithm: Algorithm) -> Self {
        CachedStemmer {
            algorithm,
            stems: Arc::default(),
        }
    }
}

impl TokenFilter for CachedStemmer {
    type Tokenizer<T: Tokenizer> = CachedStemmerWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> CachedStemmerWrapper<T> {
        CachedStemmerWrapper {
            inner: tokenizer,
            stemmer: self,
        }
    }
}

#[derive(Clone)]
pub(crate) struct CachedStemmerWrapper<T> {
    inner: T,
    stemmer: CachedStemmer,
}

impl<T: Tokenizer> Tokenizer for CachedStemmerWrapper<T> {
    type TokenStream<'a> = CachedStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        CachedStemmerStream {
            tail: self.inner.token_stream(text),
            snowball: frostem::Stemmer::new(self.stemmer.algorithm),
            stems: &self.stemmer.stems,
        }
    }
}

pub(crate) struct CachedStemmerStream<'a, T> {
    tail: T,
    snowball: frostem::Stemmer,
    stems: &'a Mutex<HashMap<String, String>>,
}

impl<T: TokenStream> TokenStream for CachedStemmerStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        let mut stems = self
            .stems
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(stem) = stems.get(&token.text) {
            token.text.clear();
            token.text.push_str(stem);
            return true;
        }
        let stem = self.snowball.stem(&token.text).into_owned();
        if stems.len() >= MAX_REMEMBERED_STEMS {
            stems.clear();
        }
        stems.insert(mem::replace(&mut token.text, stem.clone()), stem);
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Folds the German transliterations "ae", "oe", "ue" to "a", "o", "u".
///
/// Runs after ASCII folding has already turned "ä"→"a" and "ß"→"ss", so
/// "Grüße", "Gruesse" and "Grusse" all become "grusse". This is the
/// "German2" convention of Snowball; as there, "ue" after "q" is kept
/// ("Quelle" stays "quelle").
#[derive(Clone)]
pub(crate) struct GermanDigraphFolding;

impl TokenFilter for GermanDigraphFolding {
    type Tokenizer<T: Tokenizer> = DigraphWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> DigraphWrapper<T> {
        DigraphWrapper {
            inner: tokenizer,
            buffer: String::new(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct DigraphWrapper<T> {
    inner: T,
    buffer: String,
}

impl<T: Tokenizer> Tokenizer for DigraphWrapper<T> {
    type TokenStream<'a> = DigraphStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        DigraphStream {
            tail: self.inner.token_stream(text),
            buffer: &mut self.buffer,
        }
    }
}

pub(crate) struct DigraphStream<'a, T> {
    tail: T,
    buffer: &'a mut String,
}

impl<T: TokenStream> TokenStream for DigraphStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        if fold_digraphs(&token.text, self.buffer) {
            mem::swap(&mut token.text, self.buffer);
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Writes the folded form into `out` and returns true if anything changed,
/// so the common case (no digraph) costs one scan and no allocation.
fn fold_digraphs(text: &str, out: &mut String) -> bool {
    let bytes = text.as_bytes();
    let needs = bytes
        .windows(2)
        .enumerate()
        .any(|(i, w)| is_digraph(w, i.checked_sub(1).map(|p| bytes[p])));
    if !needs {
        return false;
    }
    out.clear();
    let mut prev: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        if i + 1 < bytes.len() && is_digraph(&bytes[i..i + 2], prev) {
            out.push(bytes[i] as char);
            prev = Some(bytes[i]);
            i += 2;
        } else {
            // Tokens are ASCII after AsciiFoldingFilter, except for characters
            // it has no mapping for; copy those through untouched.
            let ch = text[i..]
                .chars()
                .next()
                .expect("index is on a char boundary");
            out.push(ch);
            prev = Some(bytes[i]);
            i += ch.len_utf8();
        }
    }
    true
}

fn is_digraph(pair: &[u8], prev: Option<u8>) -> bool {
    matches!(pair, [b'a' | b'o', b'e']) || (pair == b"ue" && prev != Some(b'q'))
}

#[cfg(test)]
pub(crate) fn analyze(name: &str, text: &str) -> Vec<String> {
    let manager = TokenizerManager::default();
    register(&manager);
    let mut analyzer = manager.get(name).expect("registered");
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digraphs_fold_except_after_q() {
        let mut out = String::new();
        assert!(fold_digraphs("gruesse", &mut out));
        assert_eq!(out, "grusse");
        assert!(fold_digraphs("maerchen", &mut out));
        assert_eq!(out, "marchen");
        assert!(!fold_digraphs("quelle", &mut out));
        assert!(!fold_digraphs("kasse", &mut out));
    }

    #[test]
    fn german_spellings_meet() {
        let a = analyze(TOKENIZER_DE, "Grüße Gruesse Grusse");
        assert_eq!(a[0], a[1]);
        assert_eq!(a[1], a[2]);
        assert_eq!(
            analyze(TOKENIZER_DE, "Straße"),
            analyze(TOKENIZER_DE, "Strasse")
        );
        assert_eq!(
            analyze(TOKENIZER_DE, "Kassen"),
            analyze(TOKENIZER_DE, "kasse")
        );
    }

    #[test]
    fn remembered_stems_are_the_stemmers_own() {
        use tantivy::tokenizer::{Language, Stemmer};
        // Words repeat, so the later ones are answered from the memo.
        let text = "Kassen Drucker druckt Belege Rechnungen printers issues running Kassen printers issues";
        let base = || {
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
                .filter(LowerCaser)
                .filter(AsciiFoldingFilter)
        };
        let mut german = base()
            .filter(GermanDigraphFolding)
            .filter(Stemmer::new(Language::German))
            .build();
        let mut english = base().filter(Stemmer::new(Language::English)).build();
        assert_eq!(analyze(TOKENIZER_DE, text), tokens(&mut german, text));
        assert_eq!(analyze(TOKENIZER_EN, text), tokens(&mut english, text));
    }

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn english_plural_meets_singular() {
        assert_eq!(
            analyze(TOKENIZER_EN, "printers"),
            analyze(TOKENIZER_EN, "Printer")
        );
        assert_eq!(
            analyze(TOKENIZER_EN, "issues"),
            analyze(TOKENIZER_EN, "issue")
        );
    }
}
