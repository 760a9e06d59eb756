//! Checkpoint I/O of a run folder: model weights and optimiser state (burnpack), JSON files
//! (state, split, metrics), all written atomically so that a crash leaves each file whole.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::RecordError;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::model::{UNet, UNetConfig};
use slicewise::error::{Error, Result};
use slicewise::output::atomic_write_path;

/// Writes `v` as pretty JSON at `path`, atomically (the new file whole, or the previous one).
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    slicewise::output::atomic_write(path, |w| {
        serde_json::to_writer_pretty(&mut *w, v).map_err(|e| Error::format(path, e.to_string()))
    })
}

/// Reads a JSON file written by [`write_json`] (or by hand).
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, e.to_string()))
}

/// Resolves `init_from`: a `.bpk` file, or a run folder's `best.bpk`.
pub fn weights_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("best.bpk")
    } else {
        p.to_path_buf()
    }
}

/// Loads weights into a freshly built model of `cfg` on `dev`: a checkpoint that cannot be read
/// is an I/O error, weights that do not fit the architecture a model error.
pub fn load_weights(cfg: &UNetConfig, path: &Path, dev: &Device) -> Result<UNet> {
    cfg.init(dev)
        .try_load_file(path)
        .map_err(|e| load_error(path, "weights", e))
}

/// A failed checkpoint load: [`RecordError::Validation`] (the file's tensors do not fit the
/// model) is a model error; everything else (missing, unreadable, not a burnpack) is I/O.
fn load_error(path: &Path, what: &str, e: RecordError) -> Error {
    match &e {
        RecordError::Validation(m) => {
            Error::model(path, format!("the {what} do not fit the model: {m}")).with_source(e)
        }
        _ => Error::io("load checkpoint", path, std::io::Error::other(e)),
    }
}

/// Writes a checkpoint atomically (through [`atomic_write_path`]): `save` writes a temporary
/// file in `path`'s folder, renamed onto `path` only once complete and synced, so a crash leaves
/// the previous checkpoint (or none), never a half-written one. The temporary name ends in
/// `.part`: burn's writer appends `.bpk` only to a path without an extension, so it writes exactly
/// that file. A failed save is an I/O error on `path` (action "save checkpoint").
pub fn save_checkpoint<E>(path: &Path, save: impl FnOnce(&Path) -> Result<(), E>) -> Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    atomic_write_path(path, |tmp| {
        save(tmp).map_err(|e| Error::io("save checkpoint", path, std::io::Error::other(e)))
    })
}

/// Loads optimiser state saved with [`ModuleOptimizer::save`] into `optim` (errors as for
/// [`load_weights`]).
pub fn load_optimizer(optim: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer> {
    optim
        .load(path)
        .map_err(|e| load_error(path, "optimiser state", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_checkpoint_save_keeps_the_previous_file_and_leaves_no_temporary() {
        let dir = slicewise_tests::tmpdir();
        let path = dir.path().join("last.bpk");
        std::fs::write(&path, b"epoch 1").expect("write");
        let err = save_checkpoint(&path, |tmp| {
            assert_ne!(tmp, path);
            assert_eq!(
                tmp.parent(),
                path.parent(),
                "temporary file beside the checkpoint"
            );
            std::fs::write(tmp, b"half an ep").expect("write");
            Err(RecordError::Io("disk full".into()))
        })
        .expect_err("the save fails");
        assert_eq!(err.kind(), slicewise::error::ErrorKind::Io);
        assert!(err.to_string().contains("cannot save checkpoint"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), b"epoch 1");
        assert_eq!(names(dir.path()), ["last.bpk"]);

        save_checkpoint(&path, |tmp| std::fs::write(tmp, b"epoch 2")).expect("save");
        assert_eq!(std::fs::read(&path).expect("read"), b"epoch 2");
        assert_eq!(names(dir.path()), ["last.bpk"]);
    }

    #[test]
    fn burn_checkpoints_land_exactly_at_their_name_and_load_back() {
        let dir = slicewise_tests::tmpdir();
        let dev = crate::model::libtorch_device(None);
        let cfg = UNetConfig::small(1);
        let model = cfg.init(&dev);
        let path = dir.path().join("best.bpk");
        save_checkpoint(&path, |p| model.clone().save_file(p)).expect("save");
        assert_eq!(names(dir.path()), ["best.bpk"]);
        load_weights(&cfg, &path, &dev).expect("load back");

        let missing = load_weights(&cfg, &dir.path().join("none.bpk"), &dev).expect_err("missing");
        assert_eq!(missing.kind(), slicewise::error::ErrorKind::Io);
        std::fs::write(dir.path().join("junk.bpk"), b"not a burnpack").expect("write");
        let junk = load_weights(&cfg, &dir.path().join("junk.bpk"), &dev).expect_err("junk");
        assert_eq!(junk.kind(), slicewise::error::ErrorKind::Io);
    }
}
