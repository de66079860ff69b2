//! TensorBoard event files left by earlier processes of a run. A process killed or stopped
//! after its last checkpoint has logged points that the resumed run logs again, and
//! TensorBoard would draw both. Before a run goes on from the checkpoint at step `S`, the
//! older files lose every point past `S` (rewritten atomically), the points at `S` of the work
//! the resume redoes ([`crate::pending`]), and a record cut short by a kill; a file left with
//! no data (a process that failed at once) is removed.
//!
//! A file is a sequence of TFRecords (`u64` length, `u32` checksum of it, the bytes, `u32`
//! checksum of them), each an `Event` protobuf whose field 2 is the step and field 5 a
//! summary. Records are copied byte for byte, so their checksums stay valid. The run's config,
//! which every process writes as it starts ([`crate::tensorboard::TensorBoard::config`]), is
//! not data: a file that holds nothing else is removed as well.
use crate::durable::write_atomic;
use crate::tensorboard::{CONFIG_TAG, SESSION_START_INFO_TAG};
use anyhow::Context;
use std::path::Path;

const PREFIX: &str = "events.out.tfevents.";

/// Removes the event file this process writes in `run` (tensorboard-rs names it
/// `events.out.tfevents.<time>.<host>.<pid>.0`), if any; a file that will not go stays.
pub fn remove_this_process(run: &Path) {
    let own = format!(".{}.0", std::process::id());
    let Ok(entries) = std::fs::read_dir(run) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(PREFIX) && name.ends_with(&own) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Drops the points logged after environment step `last_step` from every event file in `run`,
/// and those at `last_step` whose tags are all among `redone` (logged again by the resume).
pub fn cut_after(run: &Path, last_step: u64, redone: &[&str]) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(run).with_context(|| format!("cannot read `{}`", run.display()))?;
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let (kept, has_data) = keep_until(&bytes, last_step, redone);
        if !has_data {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove `{}`", path.display()))?;
        } else if kept.len() < bytes.len() {
            write_atomic(&path, &kept)?;
        }
    }
    Ok(())
}

/// The records of `bytes` up to `last_step` but those at `last_step` tagged only with
/// `redone` (and any it cannot read, untouched), and whether one of them holds data.
fn keep_until(bytes: &[u8], last_step: u64, redone: &[&str]) -> (Vec<u8>, bool) {
    let (mut kept, mut has_data) = (Vec::with_capacity(bytes.len()), false);
    let mut rest = bytes;
    while rest.len() >= 12 {
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
        let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(16)) else {
            break;
        };
        if rest.len() < total {
            break; // cut short by a kill
        }
        let (record, tail) = rest.split_at(total);
        let event = read_event(&record[12..total - 4]);
        let keep = event.as_ref().is_none_or(|e| {
            let is_redone = !e.tags.is_empty()
                && e.tags
                    .iter()
                    .all(|t| t.is_some_and(|t| redone.contains(&t)));
            e.step < last_step || (e.step == last_step && !is_redone)
        });
        if keep {
            kept.extend_from_slice(record);
            has_data |= event.is_none_or(|e| e.has_data());
        }
        rest = tail;
    }
    (kept, has_data)
}

/// What the cut reads of an `Event`: its step and the tags of its summary's values.
struct Event<'a> {
    step: u64,
    /// One per value; `None` for a value without a tag, or one not UTF-8.
    tags: Vec<Option<&'a str>>,
}

impl Event<'_> {
    /// Whether it holds data: a value other than the config's.
    fn has_data(&self) -> bool {
        let config = [CONFIG_TAG, SESSION_START_INFO_TAG];
        self.tags
            .iter()
            .any(|t| !t.is_some_and(|t| config.contains(&t)))
    }
}

/// An `Event`'s step and the tags of its summary (field 5); `None` if it does not parse.
fn read_event(data: &[u8]) -> Option<Event<'_>> {
    let mut event = Event {
        step: 0,
        tags: Vec::new(),
    };
    for (field, value) in fields(data)? {
        match (field, value) {
            (2, Field::Varint(v)) => event.step = v,
            (5, Field::Bytes(summary)) => event.tags.extend(summary_tags(summary)?),
            _ => {}
        }
    }
    Some(event)
}

/// The tag (field 1) of each value (field 1) of a `Summary`.
fn summary_tags(summary: &[u8]) -> Option<Vec<Option<&str>>> {
    let mut tags = Vec::new();
    for (field, value) in fields(summary)? {
        if let (1, Field::Bytes(value)) = (field, value) {
            let tag = fields(value)?.into_iter().find_map(|f| match f {
                (1, Field::Bytes(tag)) => std::str::from_utf8(tag).ok(),
                _ => None,
            });
            tags.push(tag);
        }
    }
    Some(tags)
}

/// One field of a protobuf message: a varint, or length-delimited bytes (fixed-width fields
/// are skipped over).
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a protobuf message by number; `None` if it does not parse.
fn fields(mut data: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = varint(&mut data)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(&mut data)?),
            1 => {
                data = data.get(8..)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut data)?).ok()?;
                let (bytes, rest) = (data.get(..len)?, data.get(len..)?);
                data = rest;
                Field::Bytes(bytes)
            }
            5 => {
                data = data.get(4..)?;
                Field::Fixed
            }
            _ => return None,
        };
        out.push((key >> 3, field));
    }
    Some(out)
}

fn varint(data: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = data.split_first()?;
        *data = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record holding an `Event` with `step`, and a summary when `data`.
    fn record(step: u64, data: bool) -> Vec<u8> {
        let mut event = vec![0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]; // wall_time = 1.0
        event.push(0x10); // step
        let mut s = step;
        while s >= 0x80 {
            event.push((s as u8) | 0x80);
            s >>= 7;
        }
        event.push(s as u8);
        match data {
            true => event.extend([0x2a, 2, 0x0a, 0]), // summary { value {} }
            false => event.extend([0x1a, 3, b'a', b'b', b'c']), // file_version
        }
        let mut r = (event.len() as u64).to_le_bytes().to_vec();
        r.extend([0; 4]);
        r.extend(&event);
        r.extend([0; 4]);
        r
    }

    /// One record holding an `Event` at step 0 with a summary of values tagged `tags`.
    fn config_record(tags: &[&str]) -> Vec<u8> {
        let mut summary = Vec::new();
        for tag in tags {
            let value = [&[0x0a, tag.len() as u8][..], tag.as_bytes()].concat();
            summary.extend([0x0a, value.len() as u8]);
            summary.extend(value);
        }
        let mut event = vec![0x10, 0, 0x2a, summary.len() as u8];
        event.extend(summary);
        let mut r = (event.len() as u64).to_le_bytes().to_vec();
        r.extend([0; 4]);
        r.extend(&event);
        r.extend([0; 4]);
        r
    }

    #[test]
    fn points_past_the_checkpoint_and_cut_records_are_dropped() {
        let header = record(0, false);
        let early = [record(100, true), record(300, true)].concat();
        let late = [record(301, true), record(1 << 40, true)].concat();
        let cut = &record(500, true)[..20];
        let file = [&header[..], &early, &late, cut].concat();
        assert_eq!(
            keep_until(&file, 300, &[]),
            ([&header[..], &early].concat(), true)
        );
        assert_eq!(
            keep_until(&file, 1 << 41, &[]),
            ([&header[..], &early, &late].concat(), true)
        );
        assert_eq!(keep_until(&file, 99, &[]), (header.clone(), false));
        // A file holding the config alone holds no data.
        let config = config_record(&[CONFIG_TAG, SESSION_START_INFO_TAG]);
        let with_config = [&header[..], &config].concat();
        assert_eq!(
            keep_until(&with_config, 0, &[]),
            (with_config.clone(), false)
        );
        let both = [&with_config[..], &config_record(&[CONFIG_TAG, "loss"])].concat();
        assert_eq!(keep_until(&both, 0, &[]), (both.clone(), true));
        // What does not parse as an event is kept as it is.
        let odd = [
            header.clone(),
            vec![
                3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0, 0,
            ],
        ]
        .concat();
        assert_eq!(keep_until(&odd, 0, &[]).0, odd);
    }

    #[test]
    fn points_at_the_checkpoint_go_only_when_all_their_tags_are_redone() {
        let at = |tags: &[&str]| {
            let mut r = config_record(tags);
            // config_record's step is 0; these lie at step 5: rewrite the varint.
            let event_start = 12;
            assert_eq!(r[event_start..event_start + 2], [0x10, 0]);
            r[event_start + 1] = 5;
            r
        };
        let eval = at(&["eval/ep_rew_mean"]);
        let train = at(&["train/loss"]);
        let mixed = at(&["eval/regret", "train/loss"]);
        let before = [record(4, true), config_record(&["eval/ep_rew_mean"])].concat();
        let file = [&before[..], &eval, &train, &mixed].concat();
        let redone = ["eval/ep_rew_mean", "eval/regret"];
        assert_eq!(
            keep_until(&file, 5, &redone),
            ([&before[..], &train, &mixed].concat(), true)
        );
        // Before the checkpoint's step nothing goes, whatever its tags.
        assert_eq!(keep_until(&file, 6, &redone), (file.clone(), true));
    }
}
