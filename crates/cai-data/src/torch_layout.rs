//! Finds the images / magnitudes / redshifts tensors inside an unpickled `.pt`.

use cai_torchfile::{TensorRef, Value};

/// The partition tensors in order; `None` when the object holds no recognisable set.
pub(crate) fn locate(root: &Value) -> Result<Vec<TensorRef>, String> {
    // TensorDataset: an inert object whose state has `tensors`.
    if let Value::Object(o) = root {
        let ts = o.attr("tensors").ok_or_else(|| {
            format!(
                "a {}.{} object without a `tensors` attribute",
                o.class.module, o.class.name
            )
        })?;
        return seq(ts);
    }
    if let Value::Dict(_) = root {
        let images = root.get("images").ok_or("a dict without an `images` key")?;
        let mags = root
            .get("magnitudes")
            .ok_or("a dict without a `magnitudes` key")?;
        let mut out = vec![tensor(images, "images")?, tensor(mags, "magnitudes")?];
        if let Some(z) = ["redshifts", "redshift", "z"]
            .iter()
            .find_map(|k| root.get(k))
        {
            out.push(tensor(z, "redshifts")?);
        }
        return Ok(out);
    }
    seq(root)
}

fn seq(v: &Value) -> Result<Vec<TensorRef>, String> {
    let items = v
        .as_seq()
        .ok_or("neither a TensorDataset, a tuple/list of tensors nor a dict of tensors")?;
    if !(2..=3).contains(&items.len()) {
        return Err(format!(
            "{} tensors where 2 or 3 (images, magnitudes[, redshifts]) were expected",
            items.len()
        ));
    }
    let names = ["images", "magnitudes", "redshifts"];
    items.iter().zip(names).map(|(t, n)| tensor(t, n)).collect()
}

fn tensor(v: &Value, name: &str) -> Result<TensorRef, String> {
    v.as_tensor()
        .cloned()
        .ok_or_else(|| format!("`{name}` is not a tensor"))
}
