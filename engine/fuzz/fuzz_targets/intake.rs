//! Arbitrary bytes into the mail intake: parsed, classified, reply-extracted, and
//! ingested by a real engine on a temporary data dir. Nothing may panic and
//! every input must get an answer.
#![no_main]

use std::sync::OnceLock;

use kontor_engine::intake::{parse::parse_mail, InboundMail};
use kontor_engine::{Engine, EngineConfig};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<(tempfile::TempDir, Engine)> = OnceLock::new();
    let (_, engine) = ENGINE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = EngineConfig {
            max_per_sender_per_hour: u32::MAX,
            ..EngineConfig::default()
        };
        let engine = Engine::open(dir.path(), config).expect("engine");
        (dir, engine)
    });
    engine
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_mail(data, Some("").filter(|_| data.first() == Some(&0)));
    let mail = InboundMail {
        raw: data.to_vec(),
        envelope_from: Some(String::new()).filter(|_| data.len() % 2 == 0),
        envelope_to: vec!["support@support.example.com".into()],
    };
    engine().ingest(mail).expect("the intake answers every message");
});
