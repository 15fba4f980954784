//! Different photos that map to one object key, claimed at the same time,
//! on a server that ignores `If-None-Match` (rclone serve s3): exactly one
//! of each pair is sent, and the other records what it found at the key.

mod common;

use common::*;

const PAIRS: u32 = 12;
/// Also how long a waiting photo sleeps if nobody wakes it: an hour, so
/// these runs end in time only if the first photo's record wakes the second.
const LEASE: &str = "claim_lease = \"1h\"";
/// Far beyond a run that works, far below one that waits out the lease.
const GUARD: std::time::Duration = std::time::Duration::from_secs(120);

/// Pairs of different photos named alike (`key_format = "none"`), queued
/// together. Returns, per pair, the two image ids and their bytes.
async fn pairs(g: &Gallery, same_bytes_every: u32) -> Vec<[(u32, Vec<u8>); 2]> {
    let mut out = Vec::new();
    for n in 0..PAIRS {
        let name = format!("IMG_{n:04}.JPG");
        let a = photo_bytes(100 + n, 30_000 + n as usize);
        // Some pairs are one photo uploaded twice: the same bytes.
        let b = if same_bytes_every > 0 && n % same_bytes_every == 0 {
            a.clone()
        } else {
            photo_bytes(500 + n, 30_000 + n as usize)
        };
        let path_a = format!("./upload/2024/05/17/20240517120000-{:08x}.jpg", 2 * n);
        let path_b = format!("./upload/2024/05/18/20240518090000-{:08x}.jpg", 2 * n + 1);
        let ida = g.add_photo(&path_a, &name, &a, None).await;
        let idb = g.add_photo(&path_b, &name, &b, None).await;
        out.push([(ida, a), (idb, b)]);
    }
    out
}

async fn outcome_of(g: &Gallery, id: u32) -> String {
    for (image, outcome, _, _) in g.uploaded().await {
        if image == id {
            return outcome;
        }
    }
    for (image, status) in g.queue_statuses().await {
        if image == id {
            return status;
        }
    }
    panic!("photo {id} is neither recorded nor queued");
}

/// Checks every pair: the object holds one photo's bytes, that photo is
/// `uploaded`, and the other is `already_present` (same bytes) or
/// `failed_key_taken` (other bytes), never `uploaded`.
async fn check(g: &Gallery, s3: &S3Server, pairs: &[[(u32, Vec<u8>); 2]]) {
    for (n, [(ida, a), (idb, b)]) in pairs.iter().enumerate() {
        let key = format!("photos/IMG_{n:04}.JPG");
        let object = s3.get(&key).await.expect("one of the pair is stored");
        if a == b {
            assert_eq!(object, *a, "{key}");
            let mut both = [outcome_of(g, *ida).await, outcome_of(g, *idb).await];
            both.sort();
            assert_eq!(both, ["already_present", "uploaded"], "{key}");
            continue;
        }
        let (winner, loser, loser_bytes) = if object == *a {
            (*ida, *idb, b)
        } else {
            assert_eq!(object, *b, "{key} holds one of the two photos");
            (*idb, *ida, a)
        };
        assert_eq!(outcome_of(g, winner).await, "uploaded", "{key}");
        let expected = if *loser_bytes == object {
            "already_present"
        } else {
            "failed_key_taken"
        };
        assert_eq!(outcome_of(g, loser).await, expected, "{key}");
    }
}

#[tokio::test]
async fn same_key_pairs_claimed_together_never_replace_each_other() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    // Duplicates by md5 off: photos with the same bytes meet at the key.
    let text = |g: &Gallery| {
        config_text(g, &s3, SECRET_KEY, "")
            .replace("key_format = \"file\"", "key_format = \"none\"")
            .replace("claim_lease = \"10s\"", LEASE)
            .replace(
                "workers = 4",
                "workers = 8\nprevent_duplicates_by_md5 = false",
            )
    };
    let load = |g: &Gallery| {
        piwigo_s3upload::config::Config::from_toml(&text(g), std::path::Path::new("t"), None)
            .unwrap()
    };
    drain(load(&g)).await;
    let pairs = pairs(&g, 4).await;
    let s = tokio::time::timeout(GUARD, drain(load(&g))).await.unwrap();
    assert_eq!(s.uploaded, u64::from(PAIRS), "{s:?}");
    check(&g, &s3, &pairs).await;
    g.drop_database().await;
}

/// Two daemons sharing the queue: the key is reserved across both.
#[tokio::test]
async fn same_key_pairs_split_across_two_daemons() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let text = |g: &Gallery| {
        config_text(g, &s3, SECRET_KEY, "")
            .replace("key_format = \"file\"", "key_format = \"none\"")
            .replace("claim_lease = \"10s\"", LEASE)
            .replace("workers = 4", "workers = 3")
    };
    let load = |g: &Gallery| {
        piwigo_s3upload::config::Config::from_toml(&text(g), std::path::Path::new("t"), None)
            .unwrap()
    };
    drain(load(&g)).await;
    let pairs = pairs(&g, 0).await;
    let (a, b) = tokio::time::timeout(GUARD, async {
        tokio::join!(drain(load(&g)), drain(load(&g)))
    })
    .await
    .unwrap();
    assert_eq!(a.uploaded + b.uploaded, u64::from(PAIRS), "a={a:?} b={b:?}");
    assert_eq!(a.failed + b.failed, u64::from(PAIRS), "a={a:?} b={b:?}");
    check(&g, &s3, &pairs).await;
    g.drop_database().await;
}

/// A key still reserved by a row whose daemon died (its claim expired) is
/// taken over: the other photo is sent, not held up behind a dead claim.
#[tokio::test]
async fn a_key_held_by_a_dead_claim_is_taken_over() {
    let g = Gallery::new().await;
    let s3 = S3Server::start().await;
    let c = || {
        piwigo_s3upload::config::Config::from_toml(
            &config_text(&g, &s3, SECRET_KEY, "")
                .replace("key_format = \"file\"", "key_format = \"none\""),
            std::path::Path::new("t"),
            None,
        )
        .unwrap()
    };
    drain(c()).await;
    let dead = g
        .add_photo(
            "./upload/a/20240517120000-0000000a.jpg",
            "IMG.JPG",
            &photo_bytes(1, 900),
            None,
        )
        .await;
    let alive_bytes = photo_bytes(2, 900);
    let alive = g
        .add_photo(
            "./upload/b/20240517120000-0000000b.jpg",
            "IMG.JPG",
            &alive_bytes,
            None,
        )
        .await;
    // The dead daemon's row: the key reserved, the claim long expired, not
    // due again for a while.
    let reservation = md5_hex(format!("{BUCKET}\0photos/IMG.JPG\0").as_bytes());
    let queue = g.table("s3upload_queue");
    g.exec(&format!(
        "INSERT INTO {queue} (image_id, source, key_md5, claimed_by, claimed_until, next_attempt_at) \
         VALUES ({dead}, 'test', '{reservation}', 'dead-host:1:0', NOW(3) - INTERVAL 1 HOUR, NOW(3) + INTERVAL 1 HOUR)"
    ))
    .await;
    g.exec(&format!(
        "INSERT INTO {queue} (image_id, source) VALUES ({alive}, 'test')"
    ))
    .await;
    let s = drain(c()).await;
    assert_eq!(s.uploaded, 1, "{s:?}");
    assert_eq!(s3.get("photos/IMG.JPG").await.unwrap(), alive_bytes);
    assert_eq!(g.uploaded().await[0].0, alive);
    g.drop_database().await;
}
