//! The md5 of every file before it is sent: of the whole file (for
//! de-duplication and Content-MD5) and of each part a multipart file is sent
//! in.
//!
//! One md5 stream cannot be vectorised: each 64-byte block depends on the
//! one before. Several files side by side can, one per SIMD lane, at a
//! fraction of the CPU per byte. So one thread hashes every file the workers
//! ask for, up to [`LANES`] streams at a time, and the dispatcher claims
//! photos in batches so that there are several to hash at once.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};

use md5_many::{Md5Many, Md5State};
use tokio::sync::oneshot;

/// Bytes read per file per round: large enough to run at disk speed, small
/// enough that a full set of lanes holds 2 MiB.
const CHUNK: usize = 256 * 1024;
/// Streams per SIMD call. Measured on an AVX-512 server CPU: eight
/// equal-length streams ran at 6 times one stream's speed (4.8 against
/// 0.79 GB/s), sixteen no faster, and five to seven far slower (0.2 GB/s),
/// so a round is always sent in full groups of eight.
const LANES: usize = 8;
/// A lone stream is hashed on its own: a padded group of eight costs more
/// than one stream, but already less than two (measured: eight streams at
/// 6 times one stream's speed).
const MIN_GROUP: usize = 2;

/// The md5 of a whole file and of each part it will be sent in.
#[derive(Debug, Clone)]
pub struct FileDigest {
    pub size: u64,
    pub md5: [u8; 16],
    /// One entry per part when the file goes multipart, else empty.
    pub parts: Vec<[u8; 16]>,
    pub part_size: u64,
}

impl FileDigest {
    pub fn md5_hex(&self) -> String {
        hex(&self.md5)
    }
}

/// Lower-case hex, as S3 and Piwigo write an md5.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hashing thread, shared by every worker. It is started again if it
/// ever stops, so one bad file cannot stop hashing for good.
#[derive(Debug)]
pub struct Hasher {
    jobs: Mutex<mpsc::Sender<Job>>,
}

#[derive(Debug)]
struct Job {
    path: PathBuf,
    part_size: Option<u64>,
    reply: oneshot::Sender<io::Result<FileDigest>>,
}

fn stopped() -> io::Error {
    io::Error::other("the hashing thread stopped unexpectedly")
}

impl Hasher {
    pub fn start() -> io::Result<Hasher> {
        Ok(Hasher {
            jobs: Mutex::new(spawn()?),
        })
    }

    /// Reads `path` once, hashing the whole file and, when `part_size` is
    /// given, every part of that size.
    pub async fn digest(&self, path: PathBuf, part_size: Option<u64>) -> io::Result<FileDigest> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            path,
            part_size,
            reply,
        };
        {
            let mut jobs = self.jobs.lock().map_err(|_| stopped())?;
            if let Err(mpsc::SendError(job)) = jobs.send(job) {
                tracing::warn!("the hashing thread had stopped; starting it again");
                *jobs = spawn()?;
                jobs.send(job).map_err(|_| stopped())?;
            }
        }
        answer.await.map_err(|_| stopped())?
    }
}

fn spawn() -> io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("md5".into())
        .spawn(move || serve(&rx))?;
    Ok(tx)
}

/// Takes new files between rounds, so a file that arrives while others
/// are being hashed joins them at once.
fn serve(jobs: &mpsc::Receiver<Job>) {
    let engine = Md5Many::new();
    let mut lanes: Vec<Lane> = Vec::with_capacity(LANES);
    loop {
        if lanes.is_empty() {
            match jobs.recv() {
                Ok(job) => lanes.extend(Lane::open(job)),
                Err(_) => return,
            }
        }
        while lanes.len() < LANES {
            match jobs.try_recv() {
                Ok(job) => lanes.extend(Lane::open(job)),
                Err(_) => break,
            }
        }
        lanes.retain_mut(Lane::read);
        hash_round(engine, &mut lanes);
    }
}

/// One file being hashed.
struct Lane {
    reply: Option<oneshot::Sender<io::Result<FileDigest>>>,
    file: File,
    size: u64,
    whole: Md5State,
    part: Option<Parts>,
    buf: Box<[u8]>,
    len: usize,
}

struct Parts {
    size: u64,
    state: Md5State,
    filled: u64,
    done: Vec<[u8; 16]>,
}

impl Lane {
    fn open(job: Job) -> Option<Lane> {
        match File::open(&job.path) {
            Ok(file) => Some(Lane {
                reply: Some(job.reply),
                file,
                size: 0,
                whole: Md5State::new(),
                part: job.part_size.map(|size| Parts {
                    size,
                    state: Md5State::new(),
                    filled: 0,
                    done: Vec::new(),
                }),
                buf: vec![0u8; CHUNK].into_boxed_slice(),
                len: 0,
            }),
            Err(e) => {
                // The worker may have stopped waiting; nothing to do then.
                let _ = job.reply.send(Err(e));
                None
            }
        }
    }

    /// Reads the next chunk, never across a part boundary. False when the
    /// lane is finished: answered, or nobody waits for it any more.
    fn read(&mut self) -> bool {
        self.len = 0;
        if self.reply.as_ref().is_none_or(|r| r.is_closed()) {
            return false;
        }
        let want = match &self.part {
            Some(p) => usize::try_from(p.size - p.filled).map_or(CHUNK, |left| left.min(CHUNK)),
            None => CHUNK,
        };
        loop {
            match self.file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    self.answer(Ok(()));
                    return false;
                }
                Ok(n) => {
                    self.len = n;
                    self.size += n as u64;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.answer(Err(e));
                    return false;
                }
            }
        }
    }

    /// Called once the hashed chunk has gone into the states.
    fn hashed(&mut self) {
        if let Some(p) = &mut self.part {
            p.filled += self.len as u64;
            if p.filled == p.size {
                p.done.push(p.state.finalize());
                p.state = Md5State::new();
                p.filled = 0;
            }
        }
    }

    fn answer(&mut self, result: io::Result<()>) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let digest = result.map(|()| {
            let (parts, part_size) = match self.part.take() {
                Some(mut p) => {
                    // An empty file still goes as one (empty) part.
                    if p.filled > 0 || p.done.is_empty() {
                        p.done.push(p.state.finalize());
                    }
                    (p.done, p.size)
                }
                None => (Vec::new(), 0),
            };
            FileDigest {
                size: self.size,
                md5: self.whole.finalize(),
                parts,
                part_size,
            }
        });
        let _ = reply.send(digest);
    }
}

/// Feeds every lane's chunk into its whole-file state and, for multipart
/// files, its part state.
fn hash_round(engine: Md5Many, lanes: &mut [Lane]) {
    let mut states: Vec<Md5State> = Vec::with_capacity(lanes.len() * 2);
    for lane in lanes.iter() {
        states.push(lane.whole);
        if let Some(p) = &lane.part {
            states.push(p.state);
        }
    }
    {
        let mut inputs: Vec<&[u8]> = Vec::with_capacity(states.len());
        for lane in lanes.iter() {
            let chunk = &lane.buf[..lane.len];
            inputs.push(chunk);
            if lane.part.is_some() {
                inputs.push(chunk);
            }
        }
        update(engine, &mut states, &inputs);
    }
    let mut updated = states.into_iter();
    for lane in lanes.iter_mut() {
        if let Some(s) = updated.next() {
            lane.whole = s;
        }
        if let Some(p) = &mut lane.part
            && let Some(s) = updated.next()
        {
            p.state = s;
        }
        lane.hashed();
    }
}

/// Appends `inputs[i]` to `states[i]`. Inputs of the longest length go
/// through SIMD in groups of [`LANES`]; shorter ones (the last chunk of a
/// file) go one by one, since a group of mixed lengths runs most of its
/// bytes at single-stream speed.
fn update(engine: Md5Many, states: &mut [Md5State], inputs: &[&[u8]]) {
    let full = inputs.iter().map(|i| i.len()).max().unwrap_or(0);
    let mut members = Vec::with_capacity(LANES);
    for (i, input) in inputs.iter().enumerate() {
        if full > 0 && input.len() == full {
            members.push(i);
            if members.len() == LANES {
                update_group(engine, states, inputs, &members);
                members.clear();
            }
        } else {
            states[i].update(input);
        }
    }
    update_group(engine, states, inputs, &members);
}

/// One SIMD call for up to [`LANES`] equal-length streams, padded with
/// copies of the first; fewer than [`MIN_GROUP`] go one by one.
fn update_group(engine: Md5Many, states: &mut [Md5State], inputs: &[&[u8]], members: &[usize]) {
    if members.len() < MIN_GROUP {
        for &i in members {
            states[i].update(inputs[i]);
        }
        return;
    }
    let mut group = [Md5State::new(); LANES];
    let mut group_inputs = [inputs[members[0]]; LANES];
    for (slot, &i) in members.iter().enumerate() {
        group[slot] = states[i];
        group_inputs[slot] = inputs[i];
    }
    engine.update_many(&mut group, &group_inputs);
    for (slot, &i) in members.iter().enumerate() {
        states[i] = group[slot];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn data(seed: usize, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 251) as u8)
            .collect()
    }

    /// Every group size, ragged lengths and repeated rounds give exactly
    /// the md5 an independent implementation gives.
    #[test]
    fn grouped_updates_match_plain_md5() {
        let engine = Md5Many::new();
        for n in 1..=2 * LANES + 3 {
            // Some streams of one length, some shorter: both paths.
            let bufs: Vec<Vec<u8>> = (0..n)
                .map(|i| data(i, if i % 3 == 0 { 1000 + i * 331 } else { 9000 }))
                .collect();
            let mut states = vec![Md5State::new(); n];
            let mut plain: Vec<Md5> = (0..n).map(|_| Md5::new()).collect();
            for round in 0..3 {
                let inputs: Vec<&[u8]> = bufs.iter().map(|b| &b[round * 17..]).collect();
                update(engine, &mut states, &inputs);
                for (p, i) in plain.iter_mut().zip(&inputs) {
                    p.update(i);
                }
            }
            for (i, (s, p)) in states.iter().zip(plain).enumerate() {
                assert_eq!(
                    s.finalize(),
                    <[u8; 16]>::from(p.finalize()),
                    "{n} streams, #{i}"
                );
            }
        }
    }

    #[tokio::test]
    async fn files_hashed_together_get_whole_and_part_digests() {
        let dir = tempfile::tempdir().unwrap();
        let hasher = Hasher::start().unwrap();
        let part = 300_000u64;
        let lens = [0, 1, 63, 64, 65, CHUNK, CHUNK * 3 + 123, 900_000, 1_000_001];
        let mut wanted = Vec::new();
        let mut asks = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            let bytes = data(i, len);
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, &bytes).unwrap();
            let part_size = (i % 2 == 0).then_some(part);
            wanted.push((bytes, part_size));
            asks.push(hasher.digest(path, part_size));
        }
        let got = futures_util::future::join_all(asks).await;
        for ((bytes, part_size), d) in wanted.iter().zip(got) {
            let d = d.unwrap();
            assert_eq!(d.size, bytes.len() as u64);
            assert_eq!(d.md5_hex(), format!("{:x}", Md5::digest(bytes)));
            match part_size {
                Some(ps) => {
                    let mut want: Vec<[u8; 16]> = bytes
                        .chunks(*ps as usize)
                        .map(|c| Md5::digest(c).into())
                        .collect();
                    if want.is_empty() {
                        want.push(Md5::digest(b"").into());
                    }
                    assert_eq!(d.parts, want, "{} bytes", bytes.len());
                    assert_eq!(d.part_size, *ps);
                }
                None => assert!(d.parts.is_empty()),
            }
        }
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_and_hashing_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let hasher = Hasher::start().unwrap();
        let err = hasher
            .digest(dir.path().join("absent"), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let path = dir.path().join("present");
        std::fs::write(&path, b"abc").unwrap();
        let d = hasher.digest(path, None).await.unwrap();
        assert_eq!(d.md5_hex(), "900150983cd24fb0d6963f7d28e17f72");
    }
}
