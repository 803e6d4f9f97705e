//! Strided tensor reads: fetch only the bytes a row range needs and convert them.

use std::ops::Range;

use crate::dtype::{decode_into, Element};
use crate::error::TorchError;
use crate::source::ByteSource;
use crate::value::TensorRef;

/// Reads gathering from one span when it wastes at most this many extra bytes.
const SPAN_SLACK: usize = 1 << 20;

/// Appends rows `rows` of `t` (storage data starting at `base`) to the cleared `out`.
pub(crate) fn read_rows<T: Element>(
    src: &dyn ByteSource,
    base: u64,
    t: &TensorRef,
    rows: Range<usize>,
    out: &mut Vec<T>,
) -> Result<(), TorchError> {
    out.clear();
    let (shape, strides, offset) = sub_view(t, &rows)?;
    let n: usize = t.numel().map(|_| shape.iter().product())?;
    if n == 0 {
        return Ok(());
    }
    let es = t.dtype.size();
    let n_bytes = n
        .checked_mul(es)
        .ok_or_else(|| TorchError::Tensor("read size overflows".into()))?;
    out.try_reserve_exact(n)
        .map_err(|_| TorchError::Tensor(format!("cannot allocate {n} elements")))?;
    let max_el = offset
        + shape
            .iter()
            .zip(&strides)
            .map(|(&d, &s)| (d - 1) * s)
            .sum::<usize>();
    let span = (max_el - offset + 1) * es;
    let start = base + (offset * es) as u64;

    let mut buf = Vec::new();
    if is_contiguous(&shape, &strides) {
        buf.resize(n_bytes, 0);
        src.read_exact_at(start, &mut buf)
            .map_err(|e| TorchError::io("", e))?;
        decode_into(t.dtype, &buf, out);
    } else if span <= n_bytes.saturating_mul(4).saturating_add(SPAN_SLACK) {
        buf.resize(span, 0);
        src.read_exact_at(start, &mut buf)
            .map_err(|e| TorchError::io("", e))?;
        let mut gathered = Vec::new();
        gathered
            .try_reserve_exact(n_bytes)
            .map_err(|_| TorchError::Tensor(format!("cannot allocate {n_bytes} bytes")))?;
        for_each_run(&shape, &strides, |el, len| {
            gathered.extend_from_slice(&buf[el * es..(el + len) * es]);
        });
        decode_into(t.dtype, &gathered, out);
    } else {
        let mut err = None;
        for_each_run(&shape, &strides, |el, len| {
            if err.is_some() {
                return;
            }
            buf.resize(len * es, 0);
            match src.read_exact_at(start + (el * es) as u64, &mut buf) {
                Ok(()) => decode_into(t.dtype, &buf, out),
                Err(e) => err = Some(TorchError::io("", e)),
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
    }
    Ok(())
}

/// The view of rows `rows`: its shape, strides and element offset.
fn sub_view(
    t: &TensorRef,
    rows: &Range<usize>,
) -> Result<(Vec<usize>, Vec<usize>, usize), TorchError> {
    if t.shape.is_empty() {
        if *rows != (0..1) {
            return Err(TorchError::Tensor(format!(
                "0-dim tensor has only row 0..1, asked {rows:?}"
            )));
        }
        return Ok((vec![1], vec![1], t.offset));
    }
    if rows.start > rows.end || rows.end > t.shape[0] {
        return Err(TorchError::Tensor(format!(
            "rows {rows:?} outside 0..{} of tensor with shape {:?}",
            t.shape[0], t.shape
        )));
    }
    let mut shape = t.shape.clone();
    shape[0] = rows.len();
    // Fits: TensorRef::new checked the full extent, and rows lie inside it.
    let offset = t.offset + rows.start * t.strides[0];
    Ok((shape, t.strides.clone(), offset))
}

/// Row-major contiguity, ignoring the strides of size-1 dimensions.
fn is_contiguous(shape: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1;
    for (&d, &s) in shape.iter().zip(strides).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected *= d;
    }
    true
}

/// Calls `f(first_element, run_length)` for each maximal contiguous run, in row-major
/// order, relative to the view's offset.
fn for_each_run(shape: &[usize], strides: &[usize], mut f: impl FnMut(usize, usize)) {
    // Fold the innermost dimensions that are contiguous into one run.
    let mut inner = shape.len();
    let mut run = 1usize;
    while inner > 0 {
        let (d, s) = (shape[inner - 1], strides[inner - 1]);
        if d == 1 || s == run {
            run *= d;
            inner -= 1;
        } else {
            break;
        }
    }
    let outer = &shape[..inner];
    let mut idx = vec![0usize; outer.len()];
    loop {
        let el: usize = idx.iter().zip(strides).map(|(&i, &s)| i * s).sum();
        f(el, run);
        // Odometer increment over the outer dimensions.
        let mut k = outer.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < outer[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_a_transposed_matrix_are_single_elements() {
        let mut runs = Vec::new();
        for_each_run(&[3, 2], &[1, 3], |e, l| runs.push((e, l)));
        assert_eq!(runs, vec![(0, 1), (3, 1), (1, 1), (4, 1), (2, 1), (5, 1)]);
    }

    #[test]
    fn row_slices_fold_into_runs() {
        let mut runs = Vec::new();
        for_each_run(&[2, 3], &[8, 1], |e, l| runs.push((e, l)));
        assert_eq!(runs, vec![(0, 3), (8, 3)]);
    }
}
