//! Bytes of a QUIC stream fed to the edge's request parser and resolve
//! decision (`quic::stream::Stream`, through its `feed` entry point), in
//! chunks the fuzzer chooses, against a table built from a real snapshot.
//!
//! Input: byte 0 sets the chunk size (1 + byte); the rest is the stream.
//!
//! Properties: every complete request gets exactly one ANSWER, in order,
//! with its id; the answers decode; a malformed frame ends the stream with
//! CLOSING (and only then are bytes left unread); a resolve is 400
//! `bad_request` exactly when `Context::parse` / `AliasName::parse` (what
//! the control plane uses) refuse its names; a 200 carries the canonical
//! and version of the record the normalised names name.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use nexus_edge::app::App;
use nexus_edge::connections::ConnectionCap;
use nexus_edge::metrics::Metrics;
use nexus_edge::quic::stream::{Credentials, Stream};
use nexus_edge::state::{SourceKind, State};
use nexus_protocol::quic::{Reply, Request, Status, decode_reply, decode_request};
use nexus_protocol::snapshot::KnownContexts;
use nexus_protocol::{AliasFile, AliasName, AliasRecord, Context, Snapshot};

const ALIASES: &str = include_str!("../../../deploy/examples/aliases.yaml");

struct Fixture {
    app: App,
    records: Vec<AliasRecord>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let file = AliasFile::parse(ALIASES).expect("example parses");
        let records: Vec<AliasRecord> =
            file.aliases.iter().enumerate().map(|(i, e)| e.to_record(i as i64, 10 + i as u64, 0)).collect();
        let state = Arc::new(State::new(SourceKind::File));
        let snapshot = Snapshot {
            epoch: 1,
            version: 100,
            created_at_ms: 0,
            intended_shrink: false,
            records: records.clone(),
            contexts: KnownContexts::Any,
            credentials: Default::default(),
        };
        state.install_snapshot(&snapshot, 0);
        let metrics = Arc::new(Metrics::new());
        let app = App {
            state,
            auth: None,
            connections: ConnectionCap::new(16, metrics.clone()),
            metrics,
            prometheus: false,
        };
        Fixture { app, records }
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&chunk, stream)) = input.split_first() else { return };
    let f = fixture();
    let mut s = Stream::default();
    let mut credentials: Credentials = None;
    let mut answers = Vec::new();
    let mut closing = false;
    for part in stream.chunks(1 + usize::from(chunk)) {
        let (out, closed, unread) = s.feed(&f.app, &mut credentials, part);
        answers.extend_from_slice(&out);
        assert!(unread == 0 || closed, "bytes left unread on an open stream");
        if closed {
            closing = true;
            break;
        }
    }
    // What the edge should have answered, from the protocol's decoder.
    let mut expected = Vec::new();
    let mut at = 0;
    let mut malformed = false;
    loop {
        match decode_request(&stream[at..]) {
            Ok(Some((r, used))) => {
                expected.push(r);
                at += used;
            }
            Ok(None) => break,
            Err(_) => {
                malformed = true;
                break;
            }
        }
    }
    assert_eq!(closing, malformed, "CLOSING exactly on a malformed frame");
    let mut at = 0;
    let mut replies = Vec::new();
    while at < answers.len() {
        let (reply, used) = decode_reply(&answers[at..]).expect("answers decode").expect("whole");
        replies.push(reply);
        at += used;
    }
    if closing {
        assert!(matches!(replies.pop(), Some(Reply::Closing { .. })), "CLOSING comes last");
    }
    assert_eq!(replies.len(), expected.len(), "one answer per request");
    for (reply, request) in replies.iter().zip(&expected) {
        let Reply::Answer(a) = reply else { panic!("CLOSING before the end: {reply:?}") };
        assert_eq!(a.id, request.id());
        match *request {
            Request::Auth { .. } => assert_eq!(a.status, Status::Ok, "auth is off"),
            Request::Resolve { context, alias, .. } => {
                let names = Context::parse(context).ok().zip(AliasName::parse(alias).ok());
                let Some((c, n)) = names else {
                    assert_eq!((a.status, a.text), (Status::BadRequest, "bad_request"));
                    continue;
                };
                let record = f.records.iter().find(|r| r.context == c && r.alias == n);
                match record.filter(|r| r.is_live_at(nexus_edge::clock::now_ms())) {
                    Some(r) => {
                        assert_eq!(a.status, Status::Ok, "{c}/{n}");
                        assert_eq!((a.text, a.version), (r.canonical.as_str(), r.version));
                    }
                    None => assert_eq!(a.status, Status::NotFound, "{c}/{n}: {a:?}"),
                }
            }
        }
    }
});
