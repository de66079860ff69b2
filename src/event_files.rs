//! TensorBoard event files left by earlier processes of a run. A process killed or stopped
//! after its last checkpoint has logged points that the resumed run logs again, and
//! TensorBoard would draw both. Before a run goes on from the checkpoint at step `S`, the
//! older files lose every point past `S` (rewritten atomically), and a record cut short by a
//! kill; a file left with no data (a process that failed at once) is removed.
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

/// Drops the points logged after environment step `last_step` from every event file in `run`.
pub fn cut_after(run: &Path, last_step: u64) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(run).with_context(|| format!("cannot read `{}`", run.display()))?;
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let (kept, has_data) = keep_until(&bytes, last_step);
        if !has_data {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove `{}`", path.display()))?;
        } else if kept.len() < bytes.len() {
            write_atomic(&path, &kept)?;
        }
    }
    Ok(())
}

/// The records of `bytes` up to `last_step` (and any it cannot read, untouched), and whether
/// one of them holds data.
fn keep_until(bytes: &[u8], last_step: u64) -> (Vec<u8>, bool) {
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
        if event.is_none_or(|(step, _)| step <= last_step) {
            kept.extend_from_slice(record);
            has_data |= event.is_none_or(|(_, data)| data);
        }
        rest = tail;
    }
    (kept, has_data)
}

/// An `Event`'s step and whether it holds data (a summary other than the config's); `None` if
/// it does not parse.
fn read_event(data: &[u8]) -> Option<(u64, bool)> {
    let (mut step, mut has_data) = (0, false);
    for (field, value) in fields(data)? {
        match (field, value) {
            (2, Field::Varint(v)) => step = v,
            (5, Field::Bytes(summary)) => has_data |= holds_data(summary)?,
            _ => {}
        }
    }
    Some((step, has_data))
}

/// Whether a `Summary` holds a value (field 1) whose tag (its field 1) is not the config's.
fn holds_data(summary: &[u8]) -> Option<bool> {
    let config = [CONFIG_TAG.as_bytes(), SESSION_START_INFO_TAG.as_bytes()];
    let mut data = false;
    for (field, value) in fields(summary)? {
        if let (1, Field::Bytes(value)) = (field, value) {
            let tag = fields(value)?.into_iter().find_map(|f| match f {
                (1, Field::Bytes(tag)) => Some(tag),
                _ => None,
            });
            data |= !tag.is_some_and(|t| config.contains(&t));
        }
    }
    Some(data)
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
            keep_until(&file, 300),
            ([&header[..], &early].concat(), true)
        );
        assert_eq!(
            keep_until(&file, 1 << 41),
            ([&header[..], &early, &late].concat(), true)
        );
        assert_eq!(keep_until(&file, 99), (header.clone(), false));
        // A file holding the config alone holds no data.
        let config = config_record(&[CONFIG_TAG, SESSION_START_INFO_TAG]);
        let with_config = [&header[..], &config].concat();
        assert_eq!(keep_until(&with_config, 0), (with_config.clone(), false));
        let both = [&with_config[..], &config_record(&[CONFIG_TAG, "loss"])].concat();
        assert_eq!(keep_until(&both, 0), (both.clone(), true));
        // What does not parse as an event is kept as it is.
        let odd = [
            header.clone(),
            vec![
                3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0, 0,
            ],
        ]
        .concat();
        assert_eq!(keep_until(&odd, 0).0, odd);
    }
}
