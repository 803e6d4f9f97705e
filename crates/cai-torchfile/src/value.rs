//! The inert value tree the restricted pickle interpreter produces.

use crate::dtype::DType;
use crate::error::TorchError;

/// A reference to a Python global (`module.name`); never resolved or imported.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Global {
    /// Module path, e.g. `torch._utils`.
    pub module: String,
    /// Attribute name, e.g. `_rebuild_tensor_v2`.
    pub name: String,
}

impl Global {
    /// True when this is `module.name`.
    pub fn is(&self, module: &str, name: &str) -> bool {
        self.module == module && self.name == name
    }
}

/// An inert instance of a class that is not interpreted (e.g. an `nn.Module`): the
/// class, the constructor arguments and the state `BUILD` gave it, nothing executed.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// The class the pickle names.
    pub class: Global,
    /// Arguments of `NEWOBJ`/`REDUCE`.
    pub args: Vec<Value>,
    /// State set by `BUILD` (usually the instance `__dict__`).
    pub state: Option<Value>,
    /// Items appended with `APPEND(S)` (list subclasses).
    pub list_items: Vec<Value>,
    /// Items set with `SETITEM(S)` (dict subclasses).
    pub dict_items: Vec<(Value, Value)>,
}

impl Object {
    /// Looks up an attribute in the `__dict__` state (or in the dict part of a
    /// `(dict, slots)` state tuple).
    pub fn attr(&self, name: &str) -> Option<&Value> {
        match self.state.as_ref()? {
            Value::Tuple(parts) => parts.iter().find_map(|p| p.get(name)),
            state => state.get(name),
        }
    }
}

/// A storage named by a persistent id: `data/<key>` inside the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// Archive key (entry `<prefix>/data/<key>`).
    pub key: String,
    /// Device tag saved with it (`cpu`, `cuda:0`, ...); everything loads on CPU.
    pub location: String,
    /// Element type declared by the storage class (`U8` for untyped storages).
    pub dtype: DType,
    /// Declared number of elements of `dtype`.
    pub numel: u64,
}

impl StorageRef {
    /// Declared byte length; must equal the archive entry size.
    pub fn byte_len(&self) -> Option<u64> {
        self.numel.checked_mul(self.dtype.size() as u64)
    }
}

/// A tensor: a strided view into a storage, validated to fit it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    /// The storage holding the elements.
    pub storage: StorageRef,
    /// Element type of the tensor.
    pub dtype: DType,
    /// Sizes of each dimension.
    pub shape: Vec<usize>,
    /// Strides in elements.
    pub strides: Vec<usize>,
    /// Offset of the first element, in elements.
    pub offset: usize,
    /// Whether it was a parameter requiring gradients (informative only).
    pub requires_grad: bool,
}

impl TensorRef {
    /// Builds a tensor after checking that every addressed element lies inside the
    /// storage (checked arithmetic, so hostile shapes cannot overflow).
    pub fn new(
        storage: StorageRef,
        dtype: DType,
        shape: Vec<usize>,
        strides: Vec<usize>,
        offset: usize,
    ) -> Result<Self, TorchError> {
        if shape.len() != strides.len() {
            return Err(TorchError::Tensor(format!(
                "shape has {} dimensions but strides has {}",
                shape.len(),
                strides.len()
            )));
        }
        let t = TensorRef {
            storage,
            dtype,
            shape,
            strides,
            offset,
            requires_grad: false,
        };
        t.numel()?;
        if let Some(end) = t.end_element()? {
            let needed = end
                .checked_mul(dtype.size() as u64)
                .ok_or_else(|| TorchError::Tensor("view extent overflows".into()))?;
            let have = t.storage.byte_len().ok_or_else(|| {
                TorchError::Tensor(format!("storage {} byte length overflows", t.storage.key))
            })?;
            if needed > have {
                return Err(TorchError::Tensor(format!(
                    "view (shape {:?}, strides {:?}, offset {}) needs {needed} bytes but storage {} holds {have}",
                    t.shape, t.strides, t.offset, t.storage.key
                )));
            }
        }
        Ok(t)
    }

    /// Number of elements, or an error if it overflows.
    pub fn numel(&self) -> Result<usize, TorchError> {
        self.shape.iter().try_fold(1usize, |acc, &d| {
            acc.checked_mul(d)
                .ok_or_else(|| TorchError::Tensor(format!("shape {:?} overflows", self.shape)))
        })
    }

    /// One past the largest storage element index addressed, `None` for empty tensors.
    fn end_element(&self) -> Result<Option<u64>, TorchError> {
        if self.shape.contains(&0) {
            return Ok(None);
        }
        let overflow =
            || TorchError::Tensor(format!("view extent of shape {:?} overflows", self.shape));
        let mut max = self.offset as u64;
        for (&d, &s) in self.shape.iter().zip(&self.strides) {
            let step = ((d - 1) as u64)
                .checked_mul(s as u64)
                .ok_or_else(overflow)?;
            max = max.checked_add(step).ok_or_else(overflow)?;
        }
        Ok(Some(max.checked_add(1).ok_or_else(overflow)?))
    }

    /// Number of elements in one row (product of all dimensions but the first).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
}

/// A Python value as reconstructed by the restricted interpreter.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// A larger integer, little-endian two's complement bytes as pickled.
    BigInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A bytes/bytearray object (or a non-UTF-8 Python 2 string).
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict or `OrderedDict`, pairs in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A set or frozenset.
    Set(Vec<Value>),
    /// A reference to a global (class, function, dtype...).
    Global(Global),
    /// An inert instance.
    Object(Box<Object>),
    /// A tensor rebuilt by an allow-listed torch reconstructor.
    Tensor(TensorRef),
    /// A bare storage.
    Storage(StorageRef),
}

impl Value {
    /// Looks up a string key in a dict (or an attribute of an inert object).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            Value::Object(o) => o.attr(key),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// The float (or integer as float), if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&TensorRef> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The elements of a tuple or list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// Calls `f` on every tensor in the tree (depth-first, in order).
    pub fn visit_tensors<'a>(&'a self, f: &mut dyn FnMut(&'a TensorRef)) {
        match self {
            Value::Tensor(t) => f(t),
            Value::Tuple(v) | Value::List(v) | Value::Set(v) => {
                v.iter().for_each(|x| x.visit_tensors(f))
            }
            Value::Dict(p) => p.iter().for_each(|(k, v)| {
                k.visit_tensors(f);
                v.visit_tensors(f)
            }),
            Value::Object(o) => {
                o.args.iter().for_each(|x| x.visit_tensors(f));
                if let Some(s) = &o.state {
                    s.visit_tensors(f);
                }
                o.list_items.iter().for_each(|x| x.visit_tensors(f));
                o.dict_items.iter().for_each(|(k, v)| {
                    k.visit_tensors(f);
                    v.visit_tensors(f)
                });
            }
            _ => {}
        }
    }
}
