//! `scipy.sparse.load_npz` reads our npz and we read `save_npz`'s, checked with a real
//! Python when one with scipy is available: `RECOPS_PYTHON`, else `venv-ci/bin/python`
//! or `venv-ref/bin/python` of the repository. `.ci/run` installs `venv-ci` and sets
//! `RECOPS_REQUIRE_SCIPY=1`, which turns a missing scipy into a failure.

use std::path::PathBuf;
use std::process::Command;

use recops_data::{NpzCompression, read_csr_npz, write_csr_npz};
use sprs::CsMat;

fn python_with_scipy() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = std::env::var_os("RECOPS_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            root.join("venv-ref/bin/python"),
            root.join("venv-ci/bin/python"),
        ]);
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", "import scipy.sparse"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    None
}

#[test]
fn scipy_reads_ours_and_we_read_scipys() {
    let Some(py) = python_with_scipy() else {
        assert!(
            std::env::var("RECOPS_REQUIRE_SCIPY").is_err(),
            "RECOPS_REQUIRE_SCIPY is set but no Python with scipy was found"
        );
        println!("skipped: no Python with scipy (set RECOPS_PYTHON or create venv-ref)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 3 x 4 with an empty row, and a 0 x 0 matrix.
    let m = CsMat::new(
        (3, 4),
        vec![0, 2, 2, 3],
        vec![1, 3, 0],
        vec![11.0f32, 51.0, 31.0],
    );
    for c in [NpzCompression::Deflate, NpzCompression::Stored] {
        let ours = dir.path().join(format!("ours_{c:?}.npz"));
        write_csr_npz(&ours, &m, c).unwrap();
        let script = format!(
            "import scipy.sparse as sp, numpy as np\n\
             X = sp.load_npz({ours:?})\n\
             assert X.format == 'csr' and X.shape == (3, 4), (X.format, X.shape)\n\
             assert X.dtype == np.float32 and X.indices.dtype == np.int32\n\
             assert (X.toarray() == np.array([[0, 11, 0, 51], [0, 0, 0, 0], [31, 0, 0, 0]])).all()\n\
             Y = sp.csr_matrix(np.array([[0, 2.5, 0], [1, 0, 0]]))\n\
             sp.save_npz({theirs:?}, Y)\n\
             sp.save_npz({theirs_raw:?}, Y, compressed=False)\n\
             sp.save_npz({empty:?}, sp.csr_matrix((0, 0), dtype=np.float32))\n\
             print('ok')",
            ours = ours.display().to_string(),
            theirs = dir.path().join("theirs.npz").display().to_string(),
            theirs_raw = dir.path().join("theirs_raw.npz").display().to_string(),
            empty = dir.path().join("empty.npz").display().to_string(),
        );
        let out = Command::new(&py).args(["-c", &script]).output().unwrap();
        assert!(
            out.status.success(),
            "python failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let expected = CsMat::new((2, 3), vec![0, 1, 2], vec![1, 0], vec![2.5f32, 1.0]);
    assert_eq!(
        read_csr_npz(&dir.path().join("theirs.npz")).unwrap(),
        expected
    );
    assert_eq!(
        read_csr_npz(&dir.path().join("theirs_raw.npz")).unwrap(),
        expected
    );
    assert_eq!(
        read_csr_npz(&dir.path().join("empty.npz")).unwrap(),
        CsMat::zero((0, 0))
    );
}
