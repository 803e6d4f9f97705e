//! The opcode loop: an arena of nodes, a stack of node ids, marks and a memo.
//!
//! Containers live in the arena and are referenced by id, so memo sharing and in-place
//! mutation (`APPEND` after `BINPUT`) behave as in Python without reference counting.

use std::collections::HashMap;

use super::opcodes as op;
use super::Limits;
use crate::error::TorchError;
use crate::value::{Global, StorageRef, TensorRef};

/// Index of a node in the arena.
pub(super) type Id = usize;

/// An arena node: like [`crate::Value`] but with children by id.
#[derive(Debug)]
pub(super) enum Node {
    None,
    Bool(bool),
    Int(i64),
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    Global(Global),
    Object {
        class: Global,
        args: Vec<Id>,
        state: Option<Id>,
        list_items: Vec<Id>,
        dict_items: Vec<(Id, Id)>,
    },
    Tensor(TensorRef),
    Storage(StorageRef),
}

/// Interpreter state for one pickle stream.
pub(super) struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being executed, for error messages.
    at: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    limits: Limits,
}

impl<'a> Machine<'a> {
    pub(super) fn new(data: &'a [u8], limits: Limits) -> Self {
        Machine {
            data,
            pos: 0,
            at: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            limits,
        }
    }

    pub(super) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub(super) fn node(&self, id: Id) -> &Node {
        &self.nodes[id]
    }

    pub(super) fn err(&self, msg: impl Into<String>) -> TorchError {
        TorchError::Pickle {
            offset: self.at,
            msg: msg.into(),
        }
    }

    /// Runs until `STOP`, returning the id of the result.
    pub(super) fn run(&mut self) -> Result<Id, TorchError> {
        loop {
            self.at = self.pos;
            let code = self.take(1)?[0];
            if code == op::STOP {
                return self.pop();
            }
            self.step(code)?;
        }
    }

    fn step(&mut self, code: u8) -> Result<(), TorchError> {
        match code {
            op::PROTO => {
                let v = self.take(1)?[0];
                if v > 5 {
                    return Err(self.err(format!("unsupported pickle protocol {v}")));
                }
            }
            op::FRAME => {
                let n = self.u64()?;
                self.check_len(n)?;
            }
            op::MARK => self.marks.push(self.stack.len()),
            op::POP => {
                self.pop()?;
            }
            op::POP_MARK => {
                self.pop_mark()?;
            }
            op::DUP => {
                let top = *self
                    .stack
                    .last()
                    .ok_or_else(|| self.err("DUP on empty stack"))?;
                self.stack.push(top);
            }
            op::NONE => self.push(Node::None)?,
            op::NEWTRUE => self.push(Node::Bool(true))?,
            op::NEWFALSE => self.push(Node::Bool(false))?,
            op::BININT => {
                let b = self.take(4)?;
                let v = i32::from_le_bytes(b.try_into().expect("4 bytes"));
                self.push(Node::Int(v as i64))?
            }
            op::BININT1 => {
                let v = self.take(1)?[0];
                self.push(Node::Int(v as i64))?
            }
            op::BININT2 => {
                let b = self.take(2)?;
                self.push(Node::Int(u16::from_le_bytes([b[0], b[1]]) as i64))?
            }
            op::LONG1 => {
                let n = self.take(1)?[0] as u64;
                self.long(n)?
            }
            op::LONG4 => {
                let n = self.u32()?;
                if n > i32::MAX as u32 {
                    return Err(self.err("LONG4 with negative length"));
                }
                self.long(n as u64)?
            }
            op::BINFLOAT => {
                let b = self.take(8)?;
                self.push(Node::Float(f64::from_be_bytes(
                    b.try_into().expect("8 bytes"),
                )))?
            }
            op::SHORT_BINUNICODE => {
                let n = self.take(1)?[0] as u64;
                self.unicode(n)?
            }
            op::BINUNICODE => {
                let n = self.u32()? as u64;
                self.unicode(n)?
            }
            op::BINUNICODE8 => {
                let n = self.u64()?;
                self.unicode(n)?
            }
            op::SHORT_BINBYTES => {
                let n = self.take(1)?[0] as u64;
                self.bytes(n)?
            }
            op::BINBYTES => {
                let n = self.u32()? as u64;
                self.bytes(n)?
            }
            op::BINBYTES8 | op::BYTEARRAY8 => {
                let n = self.u64()?;
                self.bytes(n)?
            }
            op::SHORT_BINSTRING => {
                let n = self.take(1)?[0] as u64;
                self.py2_string(n)?
            }
            op::BINSTRING => {
                let n = self.u32()?;
                if n > i32::MAX as u32 {
                    return Err(self.err("BINSTRING with negative length"));
                }
                self.py2_string(n as u64)?
            }
            op::EMPTY_TUPLE => self.push(Node::Tuple(Vec::new()))?,
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = (code - op::TUPLE1 + 1) as usize;
                if self.stack.len() < n + self.floor() {
                    return Err(self.err(format!("TUPLE{n} needs {n} stack items")));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push(Node::Tuple(items))?
            }
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items))?
            }
            op::EMPTY_LIST => self.push(Node::List(Vec::new()))?,
            op::LIST => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))?
            }
            op::EMPTY_DICT => self.push(Node::Dict(Vec::new()))?,
            op::DICT => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.push(Node::Dict(pairs))?
            }
            op::EMPTY_SET => self.push(Node::Set(Vec::new()))?,
            op::FROZENSET => {
                let items = self.pop_mark()?;
                self.push(Node::Set(items))?
            }
            op::APPEND => {
                let v = self.pop()?;
                self.extend_list(vec![v])?
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                self.extend_list(items)?
            }
            op::SETITEM => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.extend_dict(vec![(k, v)])?
            }
            op::SETITEMS => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.extend_dict(pairs)?
            }
            op::ADDITEMS => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                match &mut self.nodes[target] {
                    Node::Set(s) => s.extend(items),
                    _ => return Err(self.err("ADDITEMS target is not a set")),
                }
            }
            op::GLOBAL => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(Node::Global(Global { module, name }))?
            }
            op::STACK_GLOBAL => {
                let name = self.pop_str("STACK_GLOBAL name")?;
                let module = self.pop_str("STACK_GLOBAL module")?;
                self.push(Node::Global(Global { module, name }))?
            }
            op::REDUCE => {
                let args = self.pop()?;
                let func = self.pop()?;
                let node = self.reduce(func, args)?;
                self.push(node)?
            }
            op::NEWOBJ => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let node = self.new_object(cls, args)?;
                self.push(node)?
            }
            op::NEWOBJ_EX => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                let node = self.new_object(cls, args)?;
                self.push(node)?
            }
            op::BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                if let Node::Object { state: s, .. } = &mut self.nodes[target] {
                    *s = Some(state);
                }
                // Tensors, dicts and other interpreted values ignore their BUILD state
                // (e.g. `_metadata` of a state_dict, parameter hooks).
            }
            op::BINPERSID => {
                let pid = self.pop()?;
                let node = self.persistent_load(pid)?;
                self.push(node)?
            }
            op::BINGET => {
                let i = self.take(1)?[0] as u32;
                self.get(i)?
            }
            op::LONG_BINGET => {
                let i = self.u32()?;
                self.get(i)?
            }
            op::BINPUT => {
                let i = self.take(1)?[0] as u32;
                self.put(i)?
            }
            op::LONG_BINPUT => {
                let i = self.u32()?;
                self.put(i)?
            }
            op::MEMOIZE => {
                let i = u32::try_from(self.memo.len()).map_err(|_| self.err("memo too large"))?;
                self.put(i)?
            }
            other => {
                return Err(self.err(format!(
                    "opcode 0x{other:02x} is not supported by the restricted interpreter"
                )))
            }
        }
        Ok(())
    }

    // ---- input ------------------------------------------------------------------

    fn check_len(&self, n: u64) -> Result<usize, TorchError> {
        let remaining = self.data.len() - self.pos;
        if n > remaining as u64 {
            return Err(self.err(format!(
                "declared length {n} exceeds the {remaining} bytes left"
            )));
        }
        Ok(n as usize)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TorchError> {
        let n = self.check_len(n as u64).map_err(|_| {
            self.err(format!(
                "truncated: needed {n} more bytes, {} left",
                self.data.len() - self.pos
            ))
        })?;
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, TorchError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, TorchError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn sized(&mut self, n: u64) -> Result<&'a [u8], TorchError> {
        let n = self.check_len(n)?;
        self.take(n)
    }

    fn line(&mut self) -> Result<String, TorchError> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .take(4096)
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("GLOBAL name without newline"))?;
        let s = std::str::from_utf8(&rest[..end])
            .map_err(|_| self.err("GLOBAL name is not UTF-8"))?
            .to_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn long(&mut self, n: u64) -> Result<(), TorchError> {
        let b = self.sized(n)?;
        if b.len() <= 8 {
            let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut buf = [fill; 8];
            buf[..b.len()].copy_from_slice(b);
            self.push(Node::Int(i64::from_le_bytes(buf)))
        } else {
            self.push(Node::BigInt(b.to_vec()))
        }
    }

    fn unicode(&mut self, n: u64) -> Result<(), TorchError> {
        let b = self.sized(n)?;
        let s = std::str::from_utf8(b).map_err(|_| self.err("string is not valid UTF-8"))?;
        self.push(Node::Str(s.to_owned()))
    }

    fn bytes(&mut self, n: u64) -> Result<(), TorchError> {
        let b = self.sized(n)?;
        self.push(Node::Bytes(b.to_vec()))
    }

    fn py2_string(&mut self, n: u64) -> Result<(), TorchError> {
        let b = self.sized(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => self.push(Node::Str(s.to_owned())),
            Err(_) => self.push(Node::Bytes(b.to_vec())),
        }
    }

    // ---- stack, marks, memo -----------------------------------------------------

    /// Stack height below which the current mark protects items.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn push(&mut self, node: Node) -> Result<(), TorchError> {
        let id = self.alloc(node)?;
        self.stack.push(id);
        Ok(())
    }

    pub(super) fn alloc(&mut self, node: Node) -> Result<Id, TorchError> {
        if self.nodes.len() >= self.limits.max_values {
            return Err(self.err(format!(
                "more than {} values; refusing to continue",
                self.limits.max_values
            )));
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn pop(&mut self) -> Result<Id, TorchError> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }

    fn top(&self) -> Result<Id, TorchError> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("stack underflow"));
        }
        Ok(*self.stack.last().expect("checked non-empty"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, TorchError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        Ok(self.stack.split_off(m))
    }

    fn pop_str(&mut self, what: &str) -> Result<String, TorchError> {
        let id = self.pop()?;
        match &self.nodes[id] {
            Node::Str(s) => Ok(s.clone()),
            _ => Err(self.err(format!("{what} is not a string"))),
        }
    }

    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>, TorchError> {
        if items.len() % 2 == 1 {
            return Err(self.err("odd number of items for a dict"));
        }
        Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
    }

    fn extend_list(&mut self, items: Vec<Id>) -> Result<(), TorchError> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::List(l) => l.extend(items),
            Node::Object { list_items, .. } => list_items.extend(items),
            _ => return Err(self.err("APPEND target is not a list")),
        }
        Ok(())
    }

    fn extend_dict(&mut self, pairs: Vec<(Id, Id)>) -> Result<(), TorchError> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::Dict(d) => d.extend(pairs),
            Node::Object { dict_items, .. } => dict_items.extend(pairs),
            _ => return Err(self.err("SETITEM target is not a dict")),
        }
        Ok(())
    }

    fn get(&mut self, i: u32) -> Result<(), TorchError> {
        let id = *self
            .memo
            .get(&i)
            .ok_or_else(|| self.err(format!("memo key {i} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    fn put(&mut self, i: u32) -> Result<(), TorchError> {
        let id = self.top()?;
        self.memo.insert(i, id);
        Ok(())
    }
}
