//! Property tests for the line codec: any event, whatever its strings hold (control characters,
//! quotes, unicode, lone `}`), encodes to one line that checks, decodes to the same event, and
//! chains deterministically.

use dokku_audit::record::Event;
use dokku_audit::store::codec::{check_line, encode_line, ChainHash};
use proptest::prelude::*;

fn event(app: Option<String>, message: String, key: String, value: String) -> Event {
    let mut meta = serde_json::Map::new();
    meta.insert(key, serde_json::Value::from(value));
    Event {
        id: 42,
        ts: "2026-04-08T20:00:00Z".into(),
        app,
        category: "config".into(),
        action: "set".into(),
        status: "success".into(),
        classification: Some("config_change".into()),
        source_trigger: "post-config-update".into(),
        source_type: None,
        image_tag: None,
        rev: None,
        actor_type: "system".into(),
        actor_name: None,
        actor_label: "dokku-system".into(),
        correlation_id: None,
        message,
        meta,
        created_at: "2026-04-08T20:00:00Z".into(),
    }
}

proptest! {
    #[test]
    fn encode_check_decode_round_trips(
        app in proptest::option::of(".*"),
        message in ".*",
        key in ".*",
        value in ".*",
        prev in proptest::array::uniform16(any::<u8>()),
    ) {
        let ev = event(app, message, key, value);
        let json = ev.to_json_bytes();
        let prev = ChainHash(prev);
        let mut line = Vec::new();
        let chain = encode_line(&json, &prev, &mut line);
        prop_assert_eq!(line.iter().filter(|c| **c == b'\n').count(), 1, "exactly one line");
        let checked = check_line(&line[..line.len() - 1]).expect("line checks");
        prop_assert_eq!(checked.chain, chain);
        prop_assert_eq!(checked.expected_chain(&prev), chain);
        prop_assert_eq!(checked.id(), Some(42));
        prop_assert_eq!(checked.ts(), Some("2026-04-08T20:00:00Z"));
        let back = Event::from_json_text(std::str::from_utf8(&checked.event_json()).unwrap()).unwrap();
        prop_assert_eq!(back, ev);
    }

    #[test]
    fn any_single_byte_change_is_detected(
        message in ".{0,40}",
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let ev = event(Some("web".into()), message, "k".into(), "v".into());
        let mut line = Vec::new();
        encode_line(&ev.to_json_bytes(), &ChainHash::GENESIS, &mut line);
        line.pop();
        let i = at.index(line.len());
        line[i] ^= xor;
        prop_assert!(check_line(&line).is_err());
    }
}

proptest! {
    /// A sequence of lines chains: each line's chain value is what `expected_chain` computes
    /// from the previous line's, starting at genesis; ids of any size read back. Deleting a line
    /// or swapping two lines anywhere before the end breaks the chain at the next line — the
    /// tamper evidence `verify` relies on, which `check_line` alone cannot give.
    #[test]
    fn sequences_chain_and_reordering_is_detected(
        messages in prop::collection::vec(".{0,24}", 2..8),
        first_id in any::<u64>(),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut lines = Vec::new();
        let mut chains = vec![ChainHash::GENESIS];
        for (i, m) in messages.iter().enumerate() {
            let mut ev = event(None, m.clone(), "k".into(), "v".into());
            ev.id = first_id.wrapping_add(i as u64);
            let mut line = Vec::new();
            let chain = encode_line(&ev.to_json_bytes(), chains.last().unwrap(), &mut line);
            line.pop();
            let checked = check_line(&line).expect("line checks");
            prop_assert_eq!(checked.id(), Some(ev.id));
            prop_assert_eq!(checked.expected_chain(chains.last().unwrap()), chain);
            chains.push(chain);
            lines.push(line);
        }
        let n = lines.len();
        let follows = |line: &[u8], prev: &ChainHash| {
            let c = check_line(line).expect("line checks");
            c.expected_chain(prev) == c.chain
        };
        // Delete line k (not the last): line k+1 no longer follows line k-1.
        let k = pick.index(n - 1);
        prop_assert!(!follows(&lines[k + 1], &chains[k]), "deleting line {} went unnoticed", k);
        // Swap lines k and k+1: line k+1 (now first) does not follow line k-1 (as above), and
        // line k does not follow line k+1.
        prop_assert!(!follows(&lines[k], &chains[k + 2]), "swapping {} went unnoticed", k);
    }
}
