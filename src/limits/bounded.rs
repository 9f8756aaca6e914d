//! Counts enforced while a JSON document is parsed: serde `deserialize_with` helpers
//! that count the elements of a list or object and fail as soon as the count passes
//! its limit, so refusing an over-limit document costs about the memory of the limit
//! itself, never the memory of everything the document holds. They only count; the
//! meaning of each element is checked later, by the compiler of the document.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{quote, Error};

/// One counted field: how many elements it may hold and how to name it in an error.
pub(crate) trait Limit {
    /// The most elements.
    const MAX: usize;
    /// The field's name in the document, e.g. `creatives`.
    const FIELD: &'static str;
    /// What the elements are, plural, e.g. `creatives` or `persona tags on one creative`.
    const ITEMS: &'static str;
    /// The constant's name, e.g. `MAX_CREATIVES`.
    const NAME: &'static str;
}

/// Declares a [`Limit`] marker type.
macro_rules! limit {
    ($(#[$doc:meta])* $name:ident, $max:expr, $field:literal, $items:literal, $constant:literal) => {
        $(#[$doc])*
        pub(crate) struct $name;
        impl $crate::limits::bounded::Limit for $name {
            const MAX: usize = $max;
            const FIELD: &'static str = $field;
            const ITEMS: &'static str = $items;
            const NAME: &'static str = $constant;
        }
    };
}
pub(crate) use limit;

/// No limit: an ordered map that only rejects duplicate keys.
pub(crate) struct Unbounded;

impl Limit for Unbounded {
    const MAX: usize = usize::MAX;
    const FIELD: &'static str = "";
    const ITEMS: &'static str = "entries";
    const NAME: &'static str = "";
}

/// The start of every message these helpers write; [`json_error`] recognises it.
const PREFIX: &str = "field '";

fn too_many<E: serde::de::Error, L: Limit>() -> E {
    E::custom(format_args!("{PREFIX}{}': more than {} {} ({})", L::FIELD, L::MAX, L::ITEMS, L::NAME))
}

/// A list of at most `L::MAX` elements.
pub(crate) fn vec<'de, D, T, L>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    L: Limit,
{
    struct Bounded<T, L>(PhantomData<(T, L)>);
    impl<'de, T: Deserialize<'de>, L: Limit> Visitor<'de> for Bounded<T, L> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {} {}", L::MAX, L::ITEMS)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(L::MAX).min(4096));
            while let Some(item) = seq.next_element()? {
                if out.len() == L::MAX {
                    return Err(too_many::<A::Error, L>());
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded::<T, L>(PhantomData))
}

/// How many elements a list holds, at most `L::MAX`; the elements are skipped without
/// being built (nothing is allocated for them).
pub(crate) fn count<'de, D, L>(d: D) -> Result<usize, D::Error>
where
    D: Deserializer<'de>,
    L: Limit,
{
    struct Count<L>(PhantomData<L>);
    impl<'de, L: Limit> Visitor<'de> for Count<L> {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list or an object of at most {} {}", L::MAX, L::ITEMS)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                if n == L::MAX {
                    return Err(too_many::<A::Error, L>());
                }
                n += 1;
            }
            Ok(n)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                if n == L::MAX {
                    return Err(too_many::<A::Error, L>());
                }
                n += 1;
            }
            Ok(n)
        }
    }
    d.deserialize_any(Count::<L>(PhantomData))
}

/// A JSON object kept as an ordered `Vec<(String, V)>` of at most `L::MAX` entries,
/// rejecting duplicate keys instead of silently keeping the last one.
pub(crate) fn map<'de, D, V, L>(d: D) -> Result<Vec<(String, V)>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
    L: Limit,
{
    struct Bounded<V, L>(PhantomData<(V, L)>);
    impl<'de, V: Deserialize<'de>, L: Limit> Visitor<'de> for Bounded<V, L> {
        type Value = Vec<(String, V)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            /// Past this many keys, duplicates are found with a hash set rather than a
            /// scan, so a hostile map of a million keys parses in linear time.
            const SCAN: usize = 16;
            let mut out: Vec<(String, V)> = Vec::new();
            let mut seen: Option<ahash::AHashSet<String>> = None;
            while let Some(k) = map.next_key::<String>()? {
                if out.len() == L::MAX {
                    return Err(too_many::<A::Error, L>());
                }
                let duplicate = match seen.as_mut() {
                    Some(set) => !set.insert(k.clone()),
                    None => out.iter().any(|(seen, _)| *seen == k),
                };
                if duplicate {
                    return Err(A::Error::custom(format_args!("duplicate key '{}'", quote(&k))));
                }
                let v = map.next_value::<V>()?;
                out.push((k, v));
                if seen.is_none() && out.len() >= SCAN {
                    seen = Some(out.iter().map(|(k, _)| k.clone()).collect());
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Bounded::<V, L>(PhantomData))
}

/// Why [`value`] refused a document.
#[derive(Debug)]
pub(crate) enum ValueError {
    /// An object holds `key` twice; `field` is the object's path (`chosen[0].reward`),
    /// `None` for the document's top level.
    Duplicate {
        /// The path of the object holding the key twice.
        field: Option<String>,
        /// The repeated key.
        key: String,
    },
    /// Not JSON, or nested too deeply.
    Json(serde_json::Error),
}

/// Where a value sits in a document, kept on the stack while it is parsed and written
/// out only for an error, so parsing allocates nothing for paths.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// `chosen[0].reward`, `persona_scores`, `""` at the top level.
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => {
                let parent = parent.render();
                if parent.is_empty() {
                    quote(key).into_owned()
                } else {
                    format!("{parent}.{}", quote(key))
                }
            }
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

/// Parses `json` as a `serde_json::Value`, refusing an object that holds a key twice at
/// any depth (`serde_json::from_str::<Value>` silently keeps the last one), the rule
/// [`map`] applies to typed documents. As fast as `from_str::<Value>` but for one
/// lookup per key; paths are only written for an error.
pub(crate) fn value(json: &str) -> Result<serde_json::Value, ValueError> {
    use serde::de::DeserializeSeed;
    use serde_json::{Map, Value};

    /// The duplicate found, if any (a serde error cannot carry it out unformatted).
    type Found = std::cell::RefCell<Option<(Option<String>, String)>>;

    struct Strict<'a> {
        path: Path<'a>,
        found: &'a Found,
    }

    impl<'de> DeserializeSeed<'de> for Strict<'_> {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Strict<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            loop {
                let path = Path::Index(&self.path, items.len());
                match seq.next_element_seed(Strict { path, found: self.found })? {
                    Some(item) => items.push(item),
                    None => return Ok(Value::Array(items)),
                }
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
            let mut map = Map::new();
            while let Some(key) = access.next_key::<String>()? {
                if map.contains_key(&key) {
                    let field = Some(self.path.render()).filter(|p| !p.is_empty());
                    let message = format!("duplicate key '{}'", quote(&key));
                    *self.found.borrow_mut() = Some((field, key));
                    return Err(A::Error::custom(message));
                }
                let path = Path::Key(&self.path, &key);
                let v = access.next_value_seed(Strict { path, found: self.found })?;
                map.insert(key, v);
            }
            Ok(Value::Object(map))
        }
    }

    let found = Found::default();
    let mut de = serde_json::Deserializer::from_str(json);
    let parsed = Strict { path: Path::Root, found: &found }.deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    parsed.map_err(|e| match found.into_inner() {
        Some((field, key)) => ValueError::Duplicate { field, key },
        None => ValueError::Json(e),
    })
}

/// Parses `json` as a `T`, turning a serde error into the crate's: a count refused by
/// one of these helpers becomes [`Error::Invalid`] naming the field and the limit (with
/// the line and column), anything else [`Error::Json`].
pub(crate) fn from_json<'a, T: Deserialize<'a>>(what: &'static str, json: &'a str) -> crate::Result<T> {
    serde_json::from_str(json).map_err(|source| json_error(what, source))
}

/// See [`from_json`].
pub(crate) fn json_error(what: &'static str, source: serde_json::Error) -> Error {
    let text = source.to_string();
    let Some(rest) = text.strip_prefix(PREFIX) else {
        return Error::Json { what, source };
    };
    let Some((field, problem)) = rest.split_once("': ") else {
        return Error::Json { what, source };
    };
    Error::Invalid { what, field: field.to_owned(), problem: problem.to_owned() }
}

/// Checks, before `json` is parsed for real, that the top-level field `L::FIELD` (a
/// list or an object) holds at most `L::MAX` elements, skipping everything without
/// building it: a document that breaks the limit is refused having allocated next to
/// nothing. Used for the one list of a document whose limit is large (a catalog's
/// creatives); a document of at most `L::MAX` bytes cannot break it and is not scanned.
/// Any other problem is left for the real parse to report.
pub(crate) fn precount<L: Limit>(what: &'static str, json: &str) -> crate::Result<()> {
    if json.len() <= L::MAX {
        return Ok(());
    }
    struct Field<L>(PhantomData<L>);
    impl<'de, L: Limit> serde::de::DeserializeSeed<'de> for Field<L> {
        type Value = usize;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
            count::<D, L>(d)
        }
    }
    struct Top<L>(PhantomData<L>);
    impl<'de, L: Limit> Visitor<'de> for Top<L> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == L::FIELD {
                    map.next_value_seed(Field::<L>(PhantomData))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    match de.deserialize_map(Top::<L>(PhantomData)) {
        Err(source) => match json_error(what, source) {
            limit @ Error::Invalid { .. } => Err(limit),
            _ => Ok(()),
        },
        Ok(()) => Ok(()),
    }
}
