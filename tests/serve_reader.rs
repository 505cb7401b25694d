//! `serve`'s long-lived index reader (issue 18), end to end: events a trigger appends after the
//! server started are in `/api/events` and its `total` at once, without a restart; the total
//! and the rows of the pages agree (and agree with the CLI); deleting the index directory while
//! serving changes no answer and the server rebuilds it; the event stream takes the list's
//! filters. No timings here: they are in benches/serve.sh.

use std::time::{Duration, Instant};

use crate::util::serve::{
    api_ids, cli_ids, data_env, get_with, open_stream_at, read_events, start, trigger,
};

/// Every id once.
fn distinct(ids: &[u64]) -> bool {
    let mut s = ids.to_vec();
    s.sort_unstable();
    s.dedup();
    s.len() == ids.len()
}

#[test]
fn appended_events_are_listed_and_counted_at_once_and_pages_add_up() {
    let env = data_env();
    let server = start(&env, &[]);
    let (ids, total) = api_ids(&server, "app=fresh", 3);
    assert_eq!((ids.len(), total), (0, 0));
    let categories = server.ok_json("/api/events?category=config&per_page=1")["total"]
        .as_u64()
        .unwrap();
    for i in 1..=5u64 {
        trigger(&env, "fresh", &format!("KEY_{i}"));
        // The very next request sees it, in the rows and in the total, whether or not the
        // server has indexed it yet.
        let v = server.ok_json("/api/events?app=fresh&per_page=2");
        assert_eq!(v["total"].as_u64(), Some(i), "{v}");
        let newest = &v["events"][0];
        assert_eq!(newest["app"], "fresh");
        assert!(
            newest["message"]
                .as_str()
                .unwrap()
                .contains(&format!("KEY_{i}")),
            "{newest}"
        );
        let v = server.ok_json("/api/events?category=config&per_page=1");
        assert_eq!(v["total"].as_u64(), Some(categories + i));
    }
    // The pages walk exactly `total` distinct events, for filters hitting the new events, old
    // ones and both; and the CLI (another process, its own catch-up) lists the same ones.
    for (query, per_page, cli) in [
        ("app=fresh", 2, vec!["recent", "--app", "fresh"]),
        ("category=config", 7, vec!["recent", "--category", "config"]),
        (
            "app=api&category=config",
            50,
            vec!["recent", "--app", "api", "--category", "config"],
        ),
        ("q=deploy", 40, vec!["search", "--query", "deploy"]),
        ("", 200, vec!["recent"]),
    ] {
        let (ids, total) = api_ids(&server, query, per_page);
        assert_eq!(ids.len() as u64, total, "{query}");
        assert!(distinct(&ids), "{query}");
        assert_eq!(ids, cli_ids(&env, &cli), "{query}");
    }
    // After the CLI indexed them too, the server's answers stay the same.
    trigger(&env, "fresh", "KEY_6");
    let (ids, total) = api_ids(&server, "app=fresh", 4);
    assert_eq!((ids.len(), total), (6, 6));
    assert_eq!(ids, cli_ids(&env, &["recent", "--app", "fresh"]));
}

#[test]
fn deleting_the_index_while_serving_changes_no_answer_and_it_is_rebuilt() {
    let env = data_env();
    let server = start(&env, &[]);
    let before = api_ids(&server, "category=config", 50);
    let all = server.ok_json("/api/events?per_page=1")["total"]
        .as_u64()
        .unwrap();
    let index = env.data.join("index");
    std::fs::remove_dir_all(&index).unwrap();
    // The server keeps answering from what it holds open, and sees new events.
    assert_eq!(api_ids(&server, "category=config", 50), before);
    trigger(&env, "after-delete", "KEY_A");
    let v = server.ok_json("/api/events?per_page=1");
    assert_eq!(v["total"].as_u64(), Some(all + 1));
    assert_eq!(v["events"][0]["app"], "after-delete");
    // It rebuilds the index by itself (no CLI query here, which would rebuild it too).
    let until = Instant::now() + Duration::from_secs(60);
    while !index.join("meta.json").exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        index.join("meta.json").exists(),
        "the index was not rebuilt"
    );
    // And answers the same from the rebuilt one, appended events included.
    trigger(&env, "after-delete", "KEY_B");
    let (ids, total) = api_ids(&server, "app=after-delete", 1);
    assert_eq!((ids.len(), total), (2, 2));
    let (ids, total) = api_ids(&server, "category=config", 50);
    assert_eq!(total, before.1 + 2);
    assert_eq!(ids[2..], before.0[..]);
    assert_eq!(ids, cli_ids(&env, &["recent", "--category", "config"]));
}

#[test]
fn the_stream_takes_the_list_filters() {
    let env = data_env();
    let server = start(&env, &[]);
    let mut wanted = open_stream_at(
        &server,
        "/api/events/stream?app=wanted&category=config",
        None,
    );
    let mut text = open_stream_at(&server, "/api/events/stream?q=BRAVO", None);
    let mut everything = open_stream_at(&server, "/api/events/stream", None);
    for (app, key) in [
        ("other", "ALPHA"),
        ("wanted", "BRAVO"),
        ("other", "CHARLIE"),
        ("wanted", "DELTA"),
    ] {
        trigger(&env, app, key);
    }
    let all = read_events(&mut everything, 4, Duration::from_secs(10));
    assert_eq!(all.len(), 4);
    // Waits past the two it should get: a third would be a filter that does not filter.
    let got = read_events(&mut wanted, 3, Duration::from_secs(2));
    let apps: Vec<&str> = got
        .iter()
        .map(|(_, e)| e["app"].as_str().unwrap())
        .collect();
    assert_eq!(apps, ["wanted", "wanted"]);
    assert_eq!(got[0].0, all[1].0);
    assert_eq!(got[1].0, all[3].0);
    let got = read_events(&mut text, 2, Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, all[1].0);
    assert!(got[0].1["message"].as_str().unwrap().contains("BRAVO"));
    // The same filter as the list: the list of that filter ends with what the stream sent.
    let list = server.ok_json("/api/events?app=wanted&category=config");
    let listed: Vec<u64> = list["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [all[3].0, all[1].0]);
    // Resuming a filtered stream: what matched after the id, nothing else.
    let mut resumed = open_stream_at(&server, "/api/events/stream?app=wanted", Some(all[0].0));
    let got = read_events(&mut resumed, 3, Duration::from_secs(2));
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [all[1].0, all[3].0]);
    // Paging, unknown parameters and a bad query are refused as on the list.
    let auth = format!("Bearer {}", server.token);
    for bad in [
        "page=2",
        "per_page=10",
        "nope=1",
        "q=%22unclosed",
        "since=yesterday",
        "app=a&app=b",
    ] {
        let r = get_with(
            server.port,
            &format!("/api/events/stream?{bad}"),
            &[("Authorization", &auth)],
        );
        assert_eq!(r.status, 400, "{bad}: {}", String::from_utf8_lossy(&r.body));
        r.json();
    }
}
