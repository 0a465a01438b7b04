//! The keys the configuration accepts, read from the serde derives of [`Config`] itself.
//!
//! A derived `Deserialize` hands its field names to `Deserializer::deserialize_struct`.
//! [`Walker`] is a deserializer that records them, then feeds every field a placeholder
//! value (descending into nested tables, one element of each array, `Some` of each option),
//! so the whole tree of sections and keys comes out of one `Config::deserialize`. No list
//! is kept by hand: a field added to a struct is a key here, and so in the unknown-key
//! check and the configuration reference test.
//!
//! Sections are named by path: `""` (the top level), `kafka`, `chains[]`,
//! `chains[].events[]`, `group`, `health`, `schema_registry`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::Config;

/// Every section and the keys it accepts, in declaration order.
#[derive(Debug)]
pub(crate) struct Keys {
    sections: BTreeMap<String, &'static [&'static str]>,
}

impl Keys {
    /// The keys of [`Config`], walked once per process. `None` only if the walk failed,
    /// which the unit tests rule out; callers then leave the check to serde.
    pub(crate) fn get() -> Option<&'static Keys> {
        static KEYS: OnceLock<Option<Keys>> = OnceLock::new();
        KEYS.get_or_init(|| Keys::walk::<Config>().ok()).as_ref()
    }

    /// Walks `T`'s derives.
    fn walk<'de, T: Deserialize<'de>>() -> Result<Self, Error> {
        let found = RefCell::new(BTreeMap::new());
        T::deserialize(Walker {
            path: String::new(),
            found: &found,
        })?;
        Ok(Self {
            sections: found.into_inner(),
        })
    }

    /// The keys of a section, or `None` if there is no such section.
    pub(crate) fn section(&self, path: &str) -> Option<&'static [&'static str]> {
        self.sections.get(path).copied()
    }

    /// Every section's path.
    pub(crate) fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    /// The section that `key` of section `parent` opens, if it is a table (`kafka`) or an
    /// array of tables (`chains[]`) rather than a value.
    pub(crate) fn child(&self, parent: &str, key: &str) -> Option<(String, bool)> {
        let path = join(parent, key);
        if self.sections.contains_key(&path) {
            return Some((path, false));
        }
        let array = format!("{path}[]");
        self.sections.contains_key(&array).then_some((array, true))
    }

    /// Every key that holds a value, by its full path (`kafka.brokers`, `chains[].urls`,
    /// `shutdown_timeout_ms`): what the configuration reference must document.
    #[cfg(test)]
    pub(crate) fn leaves(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (section, keys) in &self.sections {
            for key in *keys {
                if self.child(section, key).is_none() {
                    out.push(join(section, key));
                }
            }
        }
        out
    }
}

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    match parent {
        "" => key.to_owned(),
        _ => format!("{parent}.{key}"),
    }
}

/// A deserializer that records each struct's fields under its path and gives every value a
/// placeholder.
struct Walker<'a> {
    path: String,
    found: &'a RefCell<BTreeMap<String, &'static [&'static str]>>,
}

impl<'a> Walker<'a> {
    fn at(&self, path: String) -> Self {
        Self {
            path,
            found: self.found,
        }
    }
}

impl<'de> de::Deserializer<'de> for Walker<'_> {
    type Error = Error;

    /// Numbers, and anything an untagged enum reads (`start_block`): zero.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(false)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_char(' ')
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bytes(&[])
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bytes(&[])
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// One element, so that an array of tables is walked once.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let path = format!("{}[]", self.path);
        visitor.visit_seq(OneElement(Some(self.at(path))))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    /// A free-form map (`librdkafka_options`): empty, it has no fixed keys.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Fields {
            walker: self,
            fields: &[],
            next: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.found.borrow_mut().insert(self.path.clone(), fields);
        visitor.visit_map(Fields {
            walker: self,
            fields,
            next: 0,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let first = variants
            .first()
            .ok_or_else(|| de::Error::custom("an enum without variants"))?;
        let variant: StrDeserializer<'_, Error> = (*first).into_deserializer();
        visitor.visit_enum(variant)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64
    }
}

/// A sequence of one placeholder element.
struct OneElement<'a>(Option<Walker<'a>>);

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|w| seed.deserialize(w)).transpose()
    }
}

/// A struct's fields, each with a placeholder value walked under `path.field`.
struct Fields<'a> {
    walker: Walker<'a>,
    fields: &'static [&'static str],
    next: usize,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        let key: StrDeserializer<'_, Error> = field.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = self
            .fields
            .get(self.next)
            .ok_or_else(|| de::Error::custom("a value without a key"))?;
        self.next += 1;
        let path = join(&self.walker.path, field);
        seed.deserialize(self.walker.at(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_and_key_is_found() {
        let keys = Keys::get().expect("the walk of Config succeeds");
        let sections: Vec<_> = keys.sections().collect();
        assert_eq!(
            sections,
            [
                "",
                "chains[]",
                "chains[].events[]",
                "group",
                "health",
                "kafka",
                "schema_registry"
            ]
        );
        let leaves = keys.leaves();
        for key in [
            "shutdown_timeout_ms",
            "kafka.brokers",
            "kafka.librdkafka_options",
            "kafka.sasl_password",
            "chains[].urls",
            "chains[].start_block",
            "chains[].finality",
            "chains[].events[].abi",
            "health.listen_addr",
            "schema_registry.url",
        ] {
            assert!(leaves.iter().any(|l| l == key), "{key} in {leaves:?}");
        }
        for section in ["kafka", "chains", "health", "schema_registry"] {
            assert!(
                !leaves.iter().any(|l| l == section),
                "{section} is a section"
            );
        }
        assert_eq!(keys.child("", "chains"), Some(("chains[]".into(), true)));
        assert_eq!(keys.child("", "kafka"), Some(("kafka".into(), false)));
        assert_eq!(keys.child("kafka", "brokers"), None);
    }
}
