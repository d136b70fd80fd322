//! A zero-copy view of a JSON document as template values: a template that
//! reads three profile fields converts three fields, not the whole profile.
//!
//! The view must be indistinguishable from `Value::from_serialize` of the same
//! document (iteration order, `length`, truthiness, `tojson`, number types);
//! the tests render a corpus of expressions both ways to hold it to that.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, Value};

/// Converts one JSON node: scalars become engine values (numbers keep the
/// u64/i64/f64 type that serde would give them), arrays and objects become
/// lazy views sharing `root`.
///
/// # Safety
///
/// `node` must be `root` itself or reached by walking down from it: the view
/// keeps a pointer to `node` that only `root` keeps alive.
unsafe fn json_value(root: &Arc<serde_json::Value>, node: &serde_json::Value) -> Value {
    match node {
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            // SAFETY: passed on from this function's contract.
            Value::from_object(unsafe { JsonNode::new(root.clone(), node) })
        }
        scalar_node => scalar(scalar_node),
    }
}

/// A JSON scalar as an engine value; arrays and objects are the caller's.
#[inline]
pub(super) fn scalar(node: &serde_json::Value) -> Value {
    match node {
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => number(n),
        serde_json::Value::String(s) => Value::from(s.as_str()),
        _ => Value::from(()),
    }
}

/// The whole document as a value.
pub fn json_root(root: &Arc<serde_json::Value>) -> Value {
    // SAFETY: the node is the root itself.
    unsafe { json_value(root, root) }
}

fn number(n: &serde_json::Number) -> Value {
    if let Some(v) = n.as_u64() {
        Value::from(v)
    } else if let Some(v) = n.as_i64() {
        Value::from(v)
    } else {
        Value::from(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Below this many keys a linear scan beats hashing the key: product and
/// cart items, addresses and the like are small, and read field by field.
const LINEAR_SCAN_MAX: usize = 12;

pub(super) fn lookup<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<&'a serde_json::Value> {
    if map.len() <= LINEAR_SCAN_MAX {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// An array or object inside a shared, immutable JSON document.
struct JsonNode {
    root: Arc<serde_json::Value>,
    node: NonNull<serde_json::Value>,
}

// SAFETY: `node` points into the allocation `root` keeps alive, and nothing
// mutates a document once it is behind an `Arc`, so sharing the pointer
// across threads is as safe as sharing `&serde_json::Value`, which is
// Send + Sync.
unsafe impl Send for JsonNode {}
unsafe impl Sync for JsonNode {}

impl JsonNode {
    /// # Safety
    ///
    /// `node` must live inside `root` (see [`json_value`]).
    unsafe fn new(root: Arc<serde_json::Value>, node: &serde_json::Value) -> Self {
        Self {
            root,
            node: NonNull::from(node),
        }
    }

    fn node(&self) -> &serde_json::Value {
        // SAFETY: see the `Send`/`Sync` impls: `root` keeps the node alive
        // and unchanged for as long as `self` exists.
        unsafe { self.node.as_ref() }
    }

    /// `child` must have been reached from `self.node()`.
    fn wrap(&self, child: &serde_json::Value) -> Value {
        // SAFETY: `child` is inside `self.node()`, which is inside `root`.
        unsafe { json_value(&self.root, child) }
    }
}

impl fmt::Debug for JsonNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.node(), f)
    }
}

impl Object for JsonNode {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            serde_json::Value::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.node() {
            serde_json::Value::Object(map) => lookup(map, key.as_str()?).map(|v| self.wrap(v)),
            serde_json::Value::Array(items) => {
                let index = usize::try_from(key.as_i64()?).ok()?;
                items.get(index).map(|v| self.wrap(v))
            }
            _ => None,
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match self.node() {
            serde_json::Value::Object(map) => lookup(map, key).map(|v| self.wrap(v)),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            serde_json::Value::Object(_) => self.mapped_key_value_enumerator(|this| {
                let Some(map) = this.node().as_object() else {
                    unreachable!("a node never changes type")
                };
                Box::new(
                    map.iter()
                        .map(|(k, v)| (Value::from(k.as_str()), this.wrap(v))),
                )
            }),
            serde_json::Value::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.node() {
            serde_json::Value::Object(map) => Some(map.len()),
            serde_json::Value::Array(items) => Some(items.len()),
            _ => Some(0),
        }
    }
}
