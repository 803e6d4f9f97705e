//! The allow-listed reconstructors, interpreted rather than called: torch tensor and
//! parameter rebuilds, `OrderedDict`, sets and `copyreg` object construction. Every
//! other callable produces an inert object.

use super::machine::{Id, Machine, Node};
use crate::dtype::DType;
use crate::error::TorchError;
use crate::value::{Global, StorageRef, TensorRef};

impl Machine<'_> {
    /// `REDUCE`: `func(*args)` for allow-listed `func`, else an inert object.
    pub(super) fn reduce(&mut self, func: Id, args: Id) -> Result<Node, TorchError> {
        let g = self.global_of(func, "REDUCE callable")?;
        let args = self.tuple_items(args, "REDUCE arguments")?;
        self.apply(&g, &args)
    }

    /// `NEWOBJ`: `cls.__new__(cls, *args)`; containers become values, others inert objects.
    pub(super) fn new_object(&mut self, cls: Id, args: Id) -> Result<Node, TorchError> {
        let g = self.global_of(cls, "NEWOBJ class")?;
        let args = self.tuple_items(args, "NEWOBJ arguments")?;
        Ok(match (g.module.as_str(), g.name.as_str()) {
            ("collections", "OrderedDict") | ("builtins", "dict") => Node::Dict(Vec::new()),
            ("builtins", "set") | ("builtins", "frozenset") => Node::Set(Vec::new()),
            ("builtins", "list") => Node::List(Vec::new()),
            _ => inert(g, args),
        })
    }

    fn apply(&mut self, g: &Global, args: &[Id]) -> Result<Node, TorchError> {
        match (g.module.as_str(), g.name.as_str()) {
            ("torch._utils", "_rebuild_tensor") => self.rebuild_tensor(args, None, false),
            ("torch._utils", "_rebuild_tensor_v2") => self.rebuild_tensor(args, None, true),
            ("torch._utils", "_rebuild_tensor_v3") => {
                let dt = args
                    .get(6)
                    .copied()
                    .ok_or_else(|| self.err("_rebuild_tensor_v3 needs a dtype"))?;
                let dtype = self.dtype_of(dt)?;
                self.rebuild_tensor(args, Some(dtype), true)
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state") => {
                let data = *args
                    .first()
                    .ok_or_else(|| self.err("_rebuild_parameter needs data"))?;
                let requires_grad =
                    matches!(args.get(1).map(|&a| self.node(a)), Some(Node::Bool(true)));
                match self.node(data) {
                    Node::Tensor(t) => {
                        let mut t = t.clone();
                        t.requires_grad = requires_grad;
                        Ok(Node::Tensor(t))
                    }
                    _ => Err(self.err("_rebuild_parameter data is not a tensor")),
                }
            }
            ("torch._tensor", "_rebuild_from_type_v2") => {
                // (func, new_type, args, state): rebuild with `func`, drop the subclass.
                let (Some(&func), Some(&inner)) = (args.first(), args.get(2)) else {
                    return Err(self.err("_rebuild_from_type_v2 needs (func, type, args, state)"));
                };
                let fg = self.global_of(func, "_rebuild_from_type_v2 function")?;
                let inner = self.tuple_items(inner, "_rebuild_from_type_v2 arguments")?;
                self.apply(&fg, &inner)
            }
            ("collections", "OrderedDict") | ("builtins", "dict") => {
                let pairs = match args.first() {
                    None => Vec::new(),
                    Some(&a) => self.pair_list(a)?,
                };
                Ok(Node::Dict(pairs))
            }
            ("builtins", "set") | ("builtins", "frozenset") => {
                let items = match args.first() {
                    None => Vec::new(),
                    Some(&a) => self.tuple_items(a, "set items")?,
                };
                Ok(Node::Set(items))
            }
            ("copyreg", "_reconstructor") | ("copyreg", "__newobj__") => {
                let cls = *args
                    .first()
                    .ok_or_else(|| self.err("copyreg constructor needs a class"))?;
                let cls = self.global_of(cls, "copyreg class")?;
                Ok(inert(cls, args[1..].to_vec()))
            }
            _ => Ok(inert(g.clone(), args.to_vec())),
        }
    }

    /// `(storage, storage_offset, size, stride, ...)` into a validated tensor.
    fn rebuild_tensor(
        &mut self,
        args: &[Id],
        dtype: Option<DType>,
        v2: bool,
    ) -> Result<Node, TorchError> {
        if args.len() < 4 {
            return Err(self.err(format!(
                "tensor rebuild needs 4 arguments, got {}",
                args.len()
            )));
        }
        let storage = match self.node(args[0]) {
            Node::Storage(s) => s.clone(),
            _ => return Err(self.err("tensor rebuild: first argument is not a storage")),
        };
        let offset = self.usize_of(args[1], "storage offset")?;
        let shape = self.usize_seq(args[2], "size")?;
        let strides = self.usize_seq(args[3], "stride")?;
        let requires_grad =
            v2 && matches!(args.get(4).map(|&a| self.node(a)), Some(Node::Bool(true)));
        let dtype = dtype.unwrap_or(storage.dtype);
        let mut t = TensorRef::new(storage, dtype, shape, strides, offset)
            .map_err(|e| self.err(e.to_string()))?;
        t.requires_grad = requires_grad;
        Ok(Node::Tensor(t))
    }

    /// `BINPERSID` with `('storage', StorageClass, key, location, numel)`.
    pub(super) fn persistent_load(&mut self, pid: Id) -> Result<Node, TorchError> {
        let items = self.tuple_items(pid, "persistent id")?;
        if items.len() != 5 {
            return Err(self.err(format!(
                "persistent id has {} fields, expected 5",
                items.len()
            )));
        }
        match self.node(items[0]) {
            Node::Str(s) if s == "storage" => {}
            _ => return Err(self.err("persistent id is not a 'storage' record")),
        }
        let class = self.global_of(items[1], "storage type")?;
        let dtype = (class.module == "torch")
            .then(|| DType::from_storage_name(&class.name))
            .flatten()
            .ok_or_else(|| {
                self.err(format!(
                    "unsupported storage type {}.{}",
                    class.module, class.name
                ))
            })?;
        let key = self.str_of(items[2], "storage key")?;
        if key.is_empty() || key.contains('/') || key.contains("..") {
            return Err(self.err(format!("invalid storage key {key:?}")));
        }
        let location = self.str_of(items[3], "storage location")?;
        let numel = self.usize_of(items[4], "storage size")? as u64;
        let storage = StorageRef {
            key,
            location,
            dtype,
            numel,
        };
        if storage.byte_len().is_none() {
            return Err(self.err("storage byte length overflows"));
        }
        Ok(Node::Storage(storage))
    }

    // ---- argument helpers -------------------------------------------------------

    fn global_of(&self, id: Id, what: &str) -> Result<Global, TorchError> {
        match self.node(id) {
            Node::Global(g) => Ok(g.clone()),
            _ => Err(self.err(format!("{what} is not a global"))),
        }
    }

    fn tuple_items(&self, id: Id, what: &str) -> Result<Vec<Id>, TorchError> {
        match self.node(id) {
            Node::Tuple(v) | Node::List(v) => Ok(v.clone()),
            _ => Err(self.err(format!("{what} is not a tuple"))),
        }
    }

    fn pair_list(&self, id: Id) -> Result<Vec<(Id, Id)>, TorchError> {
        match self.node(id) {
            Node::Dict(d) => Ok(d.clone()),
            Node::Tuple(v) | Node::List(v) => v
                .iter()
                .map(|&p| match self.node(p) {
                    Node::Tuple(kv) | Node::List(kv) if kv.len() == 2 => Ok((kv[0], kv[1])),
                    _ => Err(self.err("OrderedDict item is not a pair")),
                })
                .collect(),
            _ => Err(self.err("OrderedDict argument is not a sequence of pairs")),
        }
    }

    fn str_of(&self, id: Id, what: &str) -> Result<String, TorchError> {
        match self.node(id) {
            Node::Str(s) => Ok(s.clone()),
            _ => Err(self.err(format!("{what} is not a string"))),
        }
    }

    fn usize_of(&self, id: Id, what: &str) -> Result<usize, TorchError> {
        match self.node(id) {
            Node::Int(i) if *i >= 0 => {
                usize::try_from(*i).map_err(|_| self.err(format!("{what} too large")))
            }
            Node::Int(i) => Err(self.err(format!("{what} is negative ({i})"))),
            _ => Err(self.err(format!("{what} is not an integer"))),
        }
    }

    fn usize_seq(&self, id: Id, what: &str) -> Result<Vec<usize>, TorchError> {
        let items = self.tuple_items(id, what)?;
        if items.len() > 64 {
            return Err(self.err(format!("{what} has {} dimensions", items.len())));
        }
        items.iter().map(|&i| self.usize_of(i, what)).collect()
    }

    fn dtype_of(&self, id: Id) -> Result<DType, TorchError> {
        let g = self.global_of(id, "dtype")?;
        (g.module == "torch")
            .then(|| DType::from_torch_name(&g.name))
            .flatten()
            .ok_or_else(|| self.err(format!("unsupported dtype {}.{}", g.module, g.name)))
    }
}

fn inert(class: Global, args: Vec<Id>) -> Node {
    Node::Object {
        class,
        args,
        state: None,
        list_items: Vec::new(),
        dict_items: Vec::new(),
    }
}
