//! Serde plumbing shared by the wire types: open string enums that keep values
//! we don't know yet, and the Graph API's "payload named after the type" shape
//! (`{"type":"text","text":{...}}`), which serde's built-in tagging can't express.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A payload whose `type` we don't model (or, on inbound data, whose payload
/// didn't match our model). Keeps every field except `type` so nothing is lost
/// and re-serialising gives back the same object.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported {
    /// The wire `type` value, e.g. `"order"` or `"cta_url"`.
    pub kind: String,
    /// All other fields of the object, untouched.
    pub raw: Map<String, Value>,
}

impl Unsupported {
    pub(crate) fn serialize_into<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("type", &self.kind)?;
        for (k, v) in &self.raw {
            if k != "type" {
                map.serialize_entry(k, v)?;
            }
        }
        Ok(())
    }
}

/// Reads the object and splits off its `type` (or `default_kind` when absent).
pub(crate) fn split_kind<'de, D: Deserializer<'de>>(
    deserializer: D,
    default_kind: Option<&str>,
) -> Result<(String, Map<String, Value>), D::Error> {
    let mut map = Map::<String, Value>::deserialize(deserializer)?;
    let kind = match map.remove("type") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(D::Error::custom(format!(
                "`type` must be a string, got {other}"
            )));
        }
        None => match default_kind {
            Some(d) => d.to_owned(),
            None => return Err(D::Error::missing_field("type")),
        },
    };
    Ok((kind, map))
}

/// Parses the payload stored under the key named like the type.
/// `lenient` (inbound data) turns a missing or malformed payload into `None`
/// so the caller falls back to [`Unsupported`]; strict mode reports the error.
pub(crate) fn take_payload<T, E>(
    kind: &str,
    map: &Map<String, Value>,
    lenient: bool,
) -> Result<Option<T>, E>
where
    T: serde::de::DeserializeOwned,
    E: serde::de::Error,
{
    let Some(payload) = map.get(kind) else {
        return if lenient {
            Ok(None)
        } else {
            Err(E::missing_field_owned(kind))
        };
    };
    match T::deserialize(payload) {
        Ok(v) => Ok(Some(v)),
        Err(_) if lenient => Ok(None),
        Err(e) => Err(E::custom(format!("{kind}: {e}"))),
    }
}

trait MissingFieldOwned: serde::de::Error {
    fn missing_field_owned(field: &str) -> Self {
        Self::custom(format!("missing field `{field}`"))
    }
}
impl<E: serde::de::Error> MissingFieldOwned for E {}

/// Writes `{"type": kind, kind: payload}` into a map serializer.
pub(crate) fn serialize_tagged<S: Serializer, T: Serialize + ?Sized>(
    serializer: S,
    kind: &str,
    payload: &T,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry("type", kind)?;
    map.serialize_entry(kind, payload)?;
    map.end()
}

/// Declares an enum whose wire form is `{"type":"<tag>","<tag>":<payload>}`,
/// with an `Unsupported` fallback for tags we don't know. Use it with
/// `#[serde(flatten)]` when the object has sibling fields.
macro_rules! type_tagged {
    (
        $(#[$meta:meta])*
        pub enum $name:ident (lenient = $lenient:expr, default = $default:expr) {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $tag:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
            /// A `type` this crate doesn't model; the object is kept as is.
            Unsupported($crate::wire::Unsupported),
        }

        impl $name {
            /// The wire `type` value.
            pub fn kind(&self) -> &str {
                match self {
                    $( Self::$variant(_) => $tag, )*
                    Self::Unsupported(u) => &u.kind,
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(p) => $crate::wire::serialize_tagged(s, $tag, p), )*
                    Self::Unsupported(u) => {
                        use serde::ser::SerializeMap;
                        let mut map = s.serialize_map(None)?;
                        u.serialize_into(&mut map)?;
                        map.end()
                    }
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let (kind, map) = $crate::wire::split_kind(d, $default)?;
                match kind.as_str() {
                    $( $tag => {
                        if let Some(p) = $crate::wire::take_payload::<$ty, D::Error>($tag, &map, $lenient)? {
                            return Ok(Self::$variant(p));
                        }
                    } )*
                    _ => {}
                }
                Ok(Self::Unsupported($crate::wire::Unsupported { kind, raw: map }))
            }
        }
    };
}
pub(crate) use type_tagged;

/// Declares a string enum that keeps unknown values in `Other(String)`:
/// Meta adds enum values without notice and a client must not fail on them.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate doesn't know yet, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $wire => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(Self::from(s.as_str()))
            }
        }
    };
}
pub(crate) use open_enum;

/// For optional sub-objects of inbound data (`context`, `referral`, …): a
/// malformed one reads as absent instead of failing the whole message, which
/// would push the entire webhook change into the raw fallback.
pub(crate) fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let v = Value::deserialize(d)?;
    Ok(T::deserialize(v).unwrap_or_default())
}

/// A count Meta sends as a number in some responses and as a string in others
/// (`file_size`). Accepts both; always writes a number.
pub(crate) mod u64_or_string {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| D::Error::custom("expected a non-negative integer")),
            Value::String(s) => s.trim().parse().map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected a number or numeric string, got {other}"
            ))),
        }
    }
}
