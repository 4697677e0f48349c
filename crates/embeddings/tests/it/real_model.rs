//! The real intfloat/multilingual-e5-small installed by scripts/fetch_models.sh: the
//! checks of shared/models/README.md (cosine ordering and values, NFD = NFC, a text
//! alone = the same text in a padded batch).

use recops_embeddings::{EmbeddingsConfig, Encoder, ModelSpec};

use crate::support::{assert_close, cosine, real_model_dir, runtime};

const CLEANSER: &str = "Sữa rửa mặt dịu nhẹ cho da nhạy cảm, làm sạch sâu và cấp ẩm.";
const CREAM: &str = "Kem dưỡng ẩm chống lão hóa giúp làn da mềm mịn, giảm nếp nhăn.";
const DRILL: &str = "Máy khoan pin cầm tay 18V kèm hai pin và bộ mũi khoan.";

fn e5(prefix: Option<&str>) -> Option<Encoder> {
    let rt = runtime()?;
    let dir = real_model_dir()?;
    let mut spec = ModelSpec::from_dir(&dir, rt).unwrap();
    assert_eq!(spec.name, "intfloat/multilingual-e5-small");
    assert_eq!(spec.prefix, "passage: ");
    if let Some(p) = prefix {
        spec.prefix = p.to_owned();
    }
    spec.max_length = 128;
    Some(Encoder::open(spec).unwrap())
}

#[test]
fn cosine_ordering_matches_the_reference_conversion() {
    let Some(mut enc) = e5(None) else { return };
    assert_eq!(enc.dim(), 384);
    assert_eq!(enc.pad_id(), 1);
    let v = enc.embed_batch(&[CLEANSER, CREAM, DRILL]).unwrap();
    let (cc, cd, rd) = (
        cosine(v.row(0), v.row(1)),
        cosine(v.row(0), v.row(2)),
        cosine(v.row(1), v.row(2)),
    );
    eprintln!("passage: cleanser/cream {cc:.3}, cleanser/drill {cd:.3}, cream/drill {rd:.3}");
    // The two cosmetics are closer to each other than either is to the drill.
    assert!(cc > cd && cc > rd, "{cc} {cd} {rd}");
    // And the values are those of the reference conversion (models README).
    assert!((cc - 0.916).abs() < 0.005, "{cc}");
    assert!((cd - 0.843).abs() < 0.005, "{cd}");
    assert!((rd - 0.842).abs() < 0.005, "{rd}");
}

#[test]
fn query_prefix_matches_the_reference_too() {
    let Some(mut enc) = e5(Some("query: ")) else {
        return;
    };
    let v = enc.embed_batch(&[CLEANSER, CREAM, DRILL]).unwrap();
    let (cc, cd, rd) = (
        cosine(v.row(0), v.row(1)),
        cosine(v.row(0), v.row(2)),
        cosine(v.row(1), v.row(2)),
    );
    assert!(cc > cd && cc > rd, "{cc} {cd} {rd}");
    assert!((cc - 0.895).abs() < 0.005, "{cc}");
    assert!((cd - 0.809).abs() < 0.005, "{cd}");
    assert!((rd - 0.807).abs() < 0.005, "{rd}");
}

#[test]
fn nfd_equals_nfc_and_padding_changes_nothing() {
    let Some(mut enc) = e5(None) else { return };
    let nfd = "Su\u{31b}\u{303}a ru\u{31b}\u{309}a ma\u{306}\u{323}t di\u{323}u nhe\u{323} cho da nha\u{323}y ca\u{309}m, la\u{300}m sa\u{323}ch sa\u{302}u va\u{300} ca\u{302}\u{301}p a\u{302}\u{309}m.";
    let alone = enc.embed_batch(&[CLEANSER]).unwrap();
    let batch = enc
        .embed_batch(&[CREAM, "Son", nfd, CLEANSER, DRILL])
        .unwrap();
    assert_close(alone.row(0), batch.row(3), 1e-5);
    assert_close(alone.row(0), batch.row(2), 1e-5);
}

#[test]
fn the_shipped_config_finds_the_repository_model_and_runtime() {
    if runtime().is_none() || real_model_dir().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = recops_core::Home::new(dir.path());
    let config = EmbeddingsConfig::load(&home).unwrap();
    let spec = ModelSpec::from_config(&config, &home).unwrap();
    assert_eq!(
        spec.max_length, 256,
        "the config's 256 (below the model's 512)"
    );
    assert_eq!(spec.prefix, "passage: ");
    assert!(spec.runtime_library.ends_with("libonnxruntime.so.1.32.0"));
    let identity = spec.identity().unwrap();
    assert_eq!(identity.model_sha256.len(), 64);
}
