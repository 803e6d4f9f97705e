//! A minimal pickle emitter for the two object shapes we save (TensorDataset and
//! state dict), producing what `torch.save` itself would.
//!
//! Whatever the protocol header says, it emits only the opcodes valid in every
//! protocol 2..=5 that torch's `weights_only` unpickler also understands (`GLOBAL`,
//! `BINUNICODE`, no `STACK_GLOBAL`/`SHORT_BINUNICODE`/`FRAME`), so state dicts load
//! with `torch.load(f)`'s safe default.

use std::collections::HashMap;

use super::{SaveLayout, TensorSpec};
use crate::pickle::opcodes as op;

/// Builds the pickle bytes.
pub(super) struct Pickler {
    buf: Vec<u8>,
    memo: HashMap<(String, String), u32>,
    next_memo: u32,
}

impl Pickler {
    fn new(protocol: u8) -> Self {
        let mut p = Pickler {
            buf: Vec::new(),
            memo: HashMap::new(),
            next_memo: 0,
        };
        p.buf.extend_from_slice(&[op::PROTO, protocol]);
        p
    }

    fn int(&mut self, v: u64) {
        if v < 0x100 {
            self.buf.extend_from_slice(&[op::BININT1, v as u8]);
        } else if v < 0x1_0000 {
            self.buf.push(op::BININT2);
            self.buf.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v < 0x8000_0000 {
            self.buf.push(op::BININT);
            self.buf.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            // Minimal two's complement: 8 bytes plus a zero byte when the top bit is set.
            let mut b = v.to_le_bytes().to_vec();
            while b.len() > 1 && b[b.len() - 1] == 0 && b[b.len() - 2] & 0x80 == 0 {
                b.pop();
            }
            if b[b.len() - 1] & 0x80 != 0 {
                b.push(0);
            }
            self.buf.extend_from_slice(&[op::LONG1, b.len() as u8]);
            self.buf.extend_from_slice(&b);
        }
    }

    fn str(&mut self, s: &str) {
        self.buf.push(op::BINUNICODE);
        self.buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn put(&mut self) -> u32 {
        let i = self.next_memo;
        self.next_memo += 1;
        if i < 256 {
            self.buf.extend_from_slice(&[op::BINPUT, i as u8]);
        } else {
            self.buf.push(op::LONG_BINPUT);
            self.buf.extend_from_slice(&i.to_le_bytes());
        }
        i
    }

    fn get(&mut self, i: u32) {
        if i < 256 {
            self.buf.extend_from_slice(&[op::BINGET, i as u8]);
        } else {
            self.buf.push(op::LONG_BINGET);
            self.buf.extend_from_slice(&i.to_le_bytes());
        }
    }

    /// Pushes a global, memoised so repeats cost a `BINGET`.
    fn global(&mut self, module: &str, name: &str) {
        let key = (module.to_owned(), name.to_owned());
        if let Some(&i) = self.memo.get(&key) {
            return self.get(i);
        }
        self.buf.push(op::GLOBAL);
        self.buf
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        let i = self.put();
        self.memo.insert(key, i);
    }

    fn tuple_of_ints(&mut self, v: &[usize]) {
        match v.len() {
            0 => self.buf.push(op::EMPTY_TUPLE),
            1..=3 => {
                v.iter().for_each(|&x| self.int(x as u64));
                self.buf.push(op::TUPLE1 + v.len() as u8 - 1);
            }
            _ => {
                self.buf.push(op::MARK);
                v.iter().for_each(|&x| self.int(x as u64));
                self.buf.push(op::TUPLE);
            }
        }
    }

    /// `_rebuild_tensor_v2(storage, 0, size, contiguous stride, False, OrderedDict())`.
    fn tensor(&mut self, key: usize, spec: &TensorSpec) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.buf.push(op::MARK);
        // Persistent id: ('storage', torch.<X>Storage, key, 'cpu', numel).
        self.buf.push(op::MARK);
        self.str("storage");
        self.global("torch", spec.dtype.storage_name());
        self.str(&key.to_string());
        self.str("cpu");
        self.int(spec.numel() as u64);
        self.buf.push(op::TUPLE);
        self.buf.push(op::BINPERSID);
        self.int(0);
        self.tuple_of_ints(&spec.shape);
        self.tuple_of_ints(&spec.contiguous_strides());
        self.buf.push(op::NEWFALSE);
        self.global("collections", "OrderedDict");
        self.buf.push(op::EMPTY_TUPLE);
        self.buf.push(op::REDUCE);
        self.buf.push(op::TUPLE);
        self.buf.push(op::REDUCE);
        self.put();
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.push(op::STOP);
        self.buf
    }
}

/// The complete `data.pkl` for `specs` saved as `layout`.
pub(super) fn pickle_layout(layout: SaveLayout, specs: &[TensorSpec], protocol: u8) -> Vec<u8> {
    let mut p = Pickler::new(protocol);
    match layout {
        SaveLayout::TensorDataset => {
            p.global("torch.utils.data.dataset", "TensorDataset");
            p.buf.push(op::EMPTY_TUPLE);
            p.buf.push(op::NEWOBJ);
            p.put();
            p.buf.push(op::EMPTY_DICT);
            p.put();
            p.str("tensors");
            p.buf.push(op::MARK);
            for (i, s) in specs.iter().enumerate() {
                p.tensor(i, s);
            }
            p.buf.push(op::TUPLE);
            p.put();
            p.buf.push(op::SETITEM);
            p.buf.push(op::BUILD);
        }
        SaveLayout::StateDict => {
            p.global("collections", "OrderedDict");
            p.buf.push(op::EMPTY_TUPLE);
            p.buf.push(op::REDUCE);
            p.put();
            p.buf.push(op::MARK);
            for (i, s) in specs.iter().enumerate() {
                p.str(&s.name);
                p.tensor(i, s);
            }
            p.buf.push(op::SETITEMS);
        }
    }
    p.finish()
}
