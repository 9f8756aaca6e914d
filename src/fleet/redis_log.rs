//! [`RedisLog`]: the fleet log on Redis (5.0 or newer; 6.2 for exclusive ranges): one
//! stream for deltas and catalog versions, one hash for the compacted snapshot and one
//! hash for the instances' cursors. Every call has a timeout and reconnects lazily after
//! a failure; nothing here is ever called on the select or record path.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{Connection, Value};

use super::{FleetLog, LogEntry, LogError, ReadLimits, SnapshotBody, Withheld};

/// Compare-and-set of the snapshot: stored only when its position is past the stored
/// one, so a slow instance never replaces a newer snapshot with an older one.
const STORE_SNAPSHOT: &str = r"
local old = redis.call('HGET', KEYS[1], 'position')
if old then
  local oa, ob = string.match(old, '^(%d+)-(%d+)$')
  local na, nb = string.match(ARGV[1], '^(%d+)-(%d+)$')
  if not na then return redis.error_reply('bad position') end
  if oa then
    oa = tonumber(oa); ob = tonumber(ob); na = tonumber(na); nb = tonumber(nb)
    if oa > na or (oa == na and ob >= nb) then return 0 end
  end
end
redis.call('HSET', KEYS[1], 'position', ARGV[1], 'body', ARGV[2])
return 1
";

/// Loads the snapshot in one atomic step: its position, and its body only when it is at
/// most ARGV[1] bytes long, else the body's length (HSTRLEN, which reads no bytes). A
/// script runs alone, so a snapshot stored between the check and the read cannot slip a
/// larger body through (as it could between a separate HSTRLEN and HGET). Nothing is
/// stored at all (or half of it): false, a nil reply.
const LOAD_SNAPSHOT: &str = r"
local position = redis.call('HGET', KEYS[1], 'position')
if not position or redis.call('HEXISTS', KEYS[1], 'body') == 0 then return false end
local length = redis.call('HSTRLEN', KEYS[1], 'body')
if length > tonumber(ARGV[1]) then return {position, length} end
return {position, redis.call('HGET', KEYS[1], 'body')}
";

/// Reads the stream past ARGV[1] (`-` or `(id`) one entry at a time, so that each
/// entry is measured before anything of it is sent: its first `body` field (against the
/// limit of its `kind`: ARGV[4] for delta, ARGV[5] for catalog, the smaller for any
/// other) and its other fields' names and values together (against ARGV[6]). An entry
/// within both is returned as XRANGE gives it, with its size; a larger one by its id, its
/// short fields other than `body` (names up to 64 bytes, values up to 256) and its
/// sizes, never its body. Stops after ARGV[2] entries or once the entries it looked at
/// reach ARGV[3] bytes, so one call sends at most that plus one entry within its limits.
/// Redis has no command that gives a stream field's length without its bytes, so each
/// entry is copied into the script (on the server, one at a time) to be measured.
const READ_AFTER: &str = r"
local start = ARGV[1]
local want = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local limits = {delta = tonumber(ARGV[4]), catalog = tonumber(ARGV[5])}
local smaller = math.min(limits.delta, limits.catalog)
local other_limit = tonumber(ARGV[6])
local out = {}
local seen = 0
while #out < want and seen < budget do
  local item = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1)[1]
  if not item then break end
  local id, fields = item[1], item[2]
  start = '(' .. id
  local body, other, kind = nil, 0, nil
  for i = 1, #fields, 2 do
    local name, value = fields[i], fields[i + 1]
    if name == 'body' and body == nil then
      body = #value
    else
      other = other + #name + #value
      if name == 'kind' and kind == nil then kind = value end
    end
  end
  local size = other
  if body then size = size + 4 + body else body = 0 end
  seen = seen + size
  local limit = smaller
  if kind == 'delta' or kind == 'catalog' then limit = limits[kind] end
  if body > limit or other > other_limit then
    local short = {}
    for i = 1, #fields, 2 do
      local name, value = fields[i], fields[i + 1]
      if name ~= 'body' and #name <= 64 and #value <= 256 then
        short[#short + 1] = name
        short[#short + 1] = value
      end
    end
    out[#out + 1] = {id, short, size, body, other}
  else
    out[#out + 1] = {id, fields, size}
  end
end
return out
";

/// The keys a [`RedisLog`] uses, all under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisKeys {
    /// The stream of deltas and catalog versions (`<prefix>:log`).
    pub stream: String,
    /// The hash holding the compacted snapshot: `position`, `body`, `trimmed`
    /// (`<prefix>:snapshot`).
    pub snapshot: String,
    /// The hash of instance id → `cursor|unix ms` (`<prefix>:cursors`).
    pub cursors: String,
}

impl RedisKeys {
    /// The keys under `prefix` (e.g. `persona-engine:shop`).
    pub fn new(prefix: &str) -> Self {
        RedisKeys {
            stream: format!("{prefix}:log"),
            snapshot: format!("{prefix}:snapshot"),
            cursors: format!("{prefix}:cursors"),
        }
    }
}

/// The fleet log on one Redis server (see the module documentation).
pub struct RedisLog {
    client: redis::Client,
    conn: Option<Connection>,
    keys: RedisKeys,
    timeout: Duration,
    stale_after: Duration,
}

impl std::fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLog").field("keys", &self.keys).field("timeout", &self.timeout).finish()
    }
}

impl RedisLog {
    /// A log on the Redis at `url` (`redis://host:port/db`) under the key `prefix`.
    /// Connects lazily: a Redis that is down now is not an error here. Every command
    /// times out after 500 ms ([`RedisLog::with_timeout`]).
    pub fn open(url: &str, prefix: &str) -> Result<Self, LogError> {
        let client = redis::Client::open(url).map_err(|e| LogError(format!("redis url '{url}': {e}")))?;
        Ok(RedisLog {
            client,
            conn: None,
            keys: RedisKeys::new(prefix),
            timeout: Duration::from_millis(500),
            stale_after: Duration::from_secs(600),
        })
    }

    /// Sets the connect, read and write timeout of every command.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.conn = None;
        self
    }

    /// Instances whose cursor was not reported for this long no longer hold back
    /// trimming (default 10 minutes); when one comes back it finds a gap and restarts
    /// from the snapshot.
    pub fn with_stale_after(mut self, stale_after: Duration) -> Self {
        self.stale_after = stale_after;
        self
    }

    /// The keys this log uses.
    pub fn keys(&self) -> &RedisKeys {
        &self.keys
    }

    fn run<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Connection, &RedisKeys) -> redis::RedisResult<T>,
    ) -> Result<T, LogError> {
        if self.conn.is_none() {
            let conn = self
                .client
                .get_connection_with_timeout(self.timeout)
                .and_then(|c| {
                    c.set_read_timeout(Some(self.timeout))?;
                    c.set_write_timeout(Some(self.timeout))?;
                    Ok(c)
                })
                .map_err(|e| LogError(format!("redis connect: {e}")))?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(LogError("redis: no connection".into()));
        };
        match f(conn, &self.keys) {
            Ok(v) => Ok(v),
            Err(e) => {
                // Whatever state the connection is in, the next call starts afresh.
                self.conn = None;
                Err(LogError(format!("redis {what}: {e}")))
            }
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// A stream id as two numbers (`ms-seq`).
fn parse_position(p: &str) -> Option<(u64, u64)> {
    let (a, b) = p.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

/// A non-negative integer of a reply, as bytes.
fn length(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

/// Entries of a [`READ_AFTER`] reply (an XRANGE reply, each item with its size and, for
/// an entry withheld, its body's and other fields' sizes). Malformed fields become
/// empty ones (the caller skips such an entry with an error, counted); a reply or an
/// item that is not the shape the script gives (an array of `[id, [field, value, ...],
/// size]`, or `[id, fields, size, body size, other size]`) is an error, never an entry
/// dropped without a word or an empty read.
fn entries(reply: &Value) -> Result<Vec<LogEntry>, LogError> {
    let items = match reply {
        Value::Array(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(LogError(format!("redis read: the reply is not an array: {other:?}"))),
    };
    let mut out = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let Value::Array(parts) = item else {
            return Err(LogError(format!("redis read: item {k} of the reply is not an array: {item:?}")));
        };
        let (Some(id), fields) = (parts.first().and_then(text), parts.get(1)) else {
            return Err(LogError(format!("redis read: item {k} of the reply has no entry id: {item:?}")));
        };
        let mut list = Vec::new();
        if let Some(Value::Array(kv)) = fields {
            for pair in kv.chunks(2) {
                if let [k, v] = pair {
                    list.push((text(k).unwrap_or_default(), bytes(v)));
                }
            }
        }
        let sizes: Option<Vec<u64>> = parts.iter().skip(2).map(length).collect();
        let (size, withheld) = match sizes.as_deref() {
            Some([size]) => (*size, None),
            Some([size, body_bytes, other_bytes]) => {
                (*size, Some(Withheld { body_bytes: *body_bytes, other_bytes: *other_bytes }))
            }
            _ => {
                return Err(LogError(format!(
                    "redis read: item {k} of the reply has no size or sizes that are not lengths: {item:?}"
                )))
            }
        };
        out.push(LogEntry { position: id, fields: list, size, withheld });
    }
    Ok(out)
}

/// The snapshot in a reply of [`LOAD_SNAPSHOT`]: nil, or `[position, body]` with the
/// body as bytes, or as its length when it was too long to read. Any other shape is an
/// error, never taken for "no snapshot".
fn snapshot(reply: Value) -> Result<Option<(String, SnapshotBody)>, LogError> {
    let parts = match reply {
        Value::Nil => return Ok(None),
        Value::Array(parts) => parts,
        other => return Err(LogError(format!("redis load snapshot: the reply is not an array: {other:?}"))),
    };
    let mut parts = parts.into_iter();
    let (Some(position), Some(body)) = (parts.next().as_ref().and_then(text), parts.next()) else {
        return Err(LogError("redis load snapshot: the reply is not [position, body]".into()));
    };
    let body = match body {
        Value::BulkString(bytes) => SnapshotBody::Bytes(bytes),
        Value::Int(length) => SnapshotBody::TooLarge(
            u64::try_from(length)
                .map_err(|_| LogError(format!("redis load snapshot: a body length of {length}")))?,
        ),
        other => {
            return Err(LogError(format!(
                "redis load snapshot: the body is neither bytes nor a length: {other:?}"
            )))
        }
    };
    Ok(Some((position, body)))
}

impl FleetLog for RedisLog {
    fn append(&mut self, fields: &[(&str, &[u8])]) -> Result<String, LogError> {
        self.run("XADD", |c, k| {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&k.stream).arg("*");
            for (name, value) in fields {
                cmd.arg(*name).arg(*value);
            }
            cmd.query(c)
        })
    }

    fn read_after(&mut self, after: Option<&str>, limits: &ReadLimits) -> Result<Vec<LogEntry>, LogError> {
        let start = after.map_or_else(|| "-".to_owned(), |p| format!("({p}"));
        let reply: Value = self.run("read", |c, k| {
            redis::Script::new(READ_AFTER)
                .key(&k.stream)
                .arg(&start)
                .arg(limits.entries.max(1))
                .arg(limits.batch_bytes.max(1))
                .arg(limits.delta_body_bytes)
                .arg(limits.catalog_body_bytes)
                .arg(limits.other_fields_bytes)
                .invoke(c)
        })?;
        entries(&reply)
    }

    fn load_snapshot(&mut self, max_bytes: usize) -> Result<Option<(String, SnapshotBody)>, LogError> {
        let reply: Value = self.run("load snapshot", |c, k| {
            redis::Script::new(LOAD_SNAPSHOT).key(&k.snapshot).arg(max_bytes).invoke(c)
        })?;
        snapshot(reply)
    }

    fn store_snapshot(&mut self, position: &str, body: &[u8]) -> Result<bool, LogError> {
        let stored: i64 = self.run("store snapshot", |c, k| {
            redis::Script::new(STORE_SNAPSHOT).key(&k.snapshot).arg(position).arg(body).invoke(c)
        })?;
        Ok(stored == 1)
    }

    fn report_cursor(&mut self, instance: &str, position: &str) -> Result<(), LogError> {
        let value = format!("{position}|{}", now_ms());
        self.run("HSET cursor", |c, k| redis::cmd("HSET").arg(&k.cursors).arg(instance).arg(value).query(c))
    }

    fn trim_before(&mut self, position: &str) -> Result<Option<String>, LogError> {
        let Some(mut keep) = parse_position(position) else {
            return Err(LogError(format!("trim: '{position}' is not a stream id")));
        };
        let cursors: Vec<(String, String)> =
            self.run("HGETALL cursors", |c, k| redis::cmd("HGETALL").arg(&k.cursors).query(c))?;
        let now = now_ms();
        for (_, value) in &cursors {
            let Some((cursor, at)) = value.split_once('|') else { continue };
            let (Some(cursor), Ok(at)) = (parse_position(cursor), at.parse::<u128>()) else { continue };
            if now.saturating_sub(at) <= self.stale_after.as_millis() {
                keep = keep.min(cursor);
            }
        }
        // XTRIM MINID keeps entries at or after the id: keep everything past `keep`.
        let min_id = format!("{}-{}", keep.0, keep.1.saturating_add(1));
        self.run("XTRIM", |c, k| {
            redis::pipe()
                .cmd("XTRIM")
                .arg(&k.stream)
                .arg("MINID")
                .arg(&min_id)
                .ignore()
                .cmd("HSET")
                .arg(&k.snapshot)
                .arg("trimmed")
                .arg(&min_id)
                .ignore()
                .query::<()>(c)
        })?;
        Ok(Some(min_id))
    }

    fn has_gap(&mut self, cursor: Option<&str>) -> Result<bool, LogError> {
        let trimmed: Option<String> =
            self.run("HGET trimmed", |c, k| redis::cmd("HGET").arg(&k.snapshot).arg("trimmed").query(c))?;
        let Some(trimmed) = trimmed.as_deref().and_then(parse_position) else { return Ok(false) };
        Ok(match cursor.and_then(parse_position) {
            // Entries before `trimmed` are gone; the next one this reader needs is cursor + 1.
            Some((ms, seq)) => (ms, seq.saturating_add(1)) < trimmed,
            None => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reply_gives_the_body_or_its_length_and_a_malformed_one_is_an_error() {
        assert_eq!(snapshot(Value::Nil).unwrap(), None);
        let reply = |body: Value| Value::Array(vec![bulk("5-0"), body]);
        assert_eq!(
            snapshot(reply(bulk("{}"))).unwrap(),
            Some(("5-0".to_owned(), SnapshotBody::Bytes(b"{}".to_vec())))
        );
        assert_eq!(
            snapshot(reply(Value::Int(1 << 31))).unwrap(),
            Some(("5-0".to_owned(), SnapshotBody::TooLarge(1 << 31)))
        );
        let err = snapshot(reply(Value::Int(-1))).unwrap_err();
        assert!(err.0.contains("a body length of -1"), "{}", err.0);
        let err = snapshot(reply(Value::Nil)).unwrap_err();
        assert!(err.0.contains("neither bytes nor a length"), "{}", err.0);
        let err = snapshot(Value::Array(vec![bulk("5-0")])).unwrap_err();
        assert!(err.0.contains("not [position, body]"), "{}", err.0);
        let err = snapshot(Value::Int(3)).unwrap_err();
        assert!(err.0.contains("not an array"), "{}", err.0);
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_well_formed_reply_gives_every_entry_and_a_malformed_one_is_an_error() {
        let item = |id: &str| {
            Value::Array(vec![bulk(id), Value::Array(vec![bulk("body"), bulk("{}")]), Value::Int(6)])
        };
        let withheld = Value::Array(vec![
            bulk("3-0"),
            Value::Array(vec![bulk("kind"), bulk("catalog")]),
            Value::Int(70_000_011),
            Value::Int(70_000_000),
            Value::Int(11),
        ]);
        let got = entries(&Value::Array(vec![item("1-0"), item("2-0"), withheld])).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((got[1].position.as_str(), got[1].fields[0].0.as_str(), got[1].size), ("2-0", "body", 6));
        assert_eq!(got[1].withheld, None);
        assert_eq!(got[2].withheld, Some(Withheld { body_bytes: 70_000_000, other_bytes: 11 }));
        assert_eq!(got[2].size, 70_000_011);
        assert!(entries(&Value::Nil).unwrap().is_empty());

        // Without its size, or with a negative one: the read fails.
        let no_size = Value::Array(vec![bulk("1-0"), Value::Array(vec![])]);
        let err = entries(&Value::Array(vec![no_size])).unwrap_err();
        assert!(err.0.contains("no size"), "{}", err.0);
        let negative = Value::Array(vec![bulk("1-0"), Value::Array(vec![]), Value::Int(-1)]);
        assert!(entries(&Value::Array(vec![negative])).is_err());

        // An item that is not `[id, fields]` between two good ones: the read fails.
        let err = entries(&Value::Array(vec![item("1-0"), Value::Int(7), item("3-0")])).unwrap_err();
        assert!(err.0.contains("item 1") && err.0.contains("not an array"), "{}", err.0);
        let err = entries(&Value::Array(vec![Value::Array(vec![Value::Int(1)])])).unwrap_err();
        assert!(err.0.contains("no entry id"), "{}", err.0);
        let err = entries(&Value::Int(3)).unwrap_err();
        assert!(err.0.contains("not an array"), "{}", err.0);
    }
}
