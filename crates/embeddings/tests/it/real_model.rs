//! The real intfloat/multilingual-e5-small installed by scripts/fetch_models.sh, both
//! variants: the checks of shared/models/README.md (cosine ordering and values, NFD =
//! NFC, a text alone = the same text in a padded batch) on float32, and int8 against
//! float32 (cosine >= 0.99 on the probes, the same ordering, the shipped config's
//! choice).

use recops_embeddings::{EmbeddingsConfig, Encoder, ModelSpec, ModelVariant};

use crate::support::{assert_close, cosine, models_dir, real_model_dir, runtime};

const CLEANSER: &str = "Sữa rửa mặt dịu nhẹ cho da nhạy cảm, làm sạch sâu và cấp ẩm.";
const CREAM: &str = "Kem dưỡng ẩm chống lão hóa giúp làn da mềm mịn, giảm nếp nhăn.";
const DRILL: &str = "Máy khoan pin cầm tay 18V kèm hai pin và bộ mũi khoan.";

const FP32: &str = "multilingual-e5-small";
const INT8: &str = "multilingual-e5-small-int8";

fn e5(prefix: Option<&str>) -> Option<Encoder> {
    variant(FP32, prefix)
}

fn variant(folder: &str, prefix: Option<&str>) -> Option<Encoder> {
    let rt = runtime()?;
    let dir = real_model_dir(folder)?;
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

/// The README probes with both prefixes, plus longer product-like texts.
const PROBE_TEXTS: [&str; 5] = [
    CLEANSER,
    CREAM,
    DRILL,
    "Son môi lì lâu trôi màu đỏ cam. Chất son mềm mịn, không làm khô môi, giữ màu suốt 8 giờ.",
    "Nồi chiên không dầu 5 lít, công suất 1500W, có hẹn giờ và 8 chế độ nấu tự động.",
];

#[test]
fn int8_keeps_cosine_099_to_fp32_on_the_probes() {
    for prefix in ["passage: ", "query: "] {
        let (Some(mut fp32), Some(mut int8)) =
            (variant(FP32, Some(prefix)), variant(INT8, Some(prefix)))
        else {
            return;
        };
        assert_eq!(fp32.identity().variant, "fp32");
        assert_eq!(int8.identity().variant, "int8");
        assert_ne!(fp32.identity().model_sha256, int8.identity().model_sha256);
        let a = fp32.embed_batch(&PROBE_TEXTS).unwrap();
        for (i, text) in PROBE_TEXTS.iter().enumerate() {
            // One at a time: activations are quantised per pass, so the vector of a text
            // depends slightly on the others in its batch (checked below).
            let b = int8.embed_batch(&[text]).unwrap();
            let c = cosine(a.row(i), b.row(0));
            eprintln!("{prefix}{text}: int8/fp32 cosine {c:.4}");
            assert!(c >= 0.99, "{prefix}{text}: cosine {c}");
        }
    }
}

#[test]
fn int8_keeps_the_reference_ordering_and_nearly_ignores_batching() {
    let Some(mut enc) = variant(INT8, None) else {
        return;
    };
    let v = enc.embed_batch(&[CLEANSER, CREAM, DRILL]).unwrap();
    let (cc, cd, rd) = (
        cosine(v.row(0), v.row(1)),
        cosine(v.row(0), v.row(2)),
        cosine(v.row(1), v.row(2)),
    );
    eprintln!("int8 passage: cleanser/cream {cc:.3}, cleanser/drill {cd:.3}, cream/drill {rd:.3}");
    assert!(cc > cd && cc > rd, "{cc} {cd} {rd}");
    assert!((cc - 0.916).abs() < 0.01, "{cc}");
    assert!((cd - 0.843).abs() < 0.01, "{cd}");
    assert!((rd - 0.842).abs() < 0.01, "{rd}");
    // Padding is masked, but the run-time quantisation scale is per pass: a text in a
    // padded batch is within a hair of itself alone, not bit-identical.
    let alone = enc.embed_batch(&[CLEANSER]).unwrap();
    let batch = enc
        .embed_batch(&[CREAM, "Son", PROBE_TEXTS[4], CLEANSER, DRILL])
        .unwrap();
    let c = cosine(alone.row(0), batch.row(3));
    eprintln!("int8 alone/in a padded batch: cosine {c:.5}");
    assert!(c >= 0.995, "{c}");
}

#[test]
fn the_shipped_config_picks_int8_and_fp32_on_request() {
    if runtime().is_none() || real_model_dir(FP32).is_none() || real_model_dir(INT8).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = recops_core::Home::new(dir.path());
    let mut config = EmbeddingsConfig::load(&home).unwrap();
    let int8 = ModelSpec::from_config(&config, &home).unwrap();
    assert_eq!(int8.variant, "int8");
    assert_eq!(int8.model_path, models_dir().join(INT8).join("model.onnx"));
    config.model.variant = ModelVariant::Fp32;
    let fp32 = ModelSpec::from_config(&config, &home).unwrap();
    assert_eq!(fp32.variant, "fp32");
    assert_eq!(fp32.model_path, models_dir().join(FP32).join("model.onnx"));
}

#[test]
fn the_shipped_config_finds_the_repository_model_and_runtime() {
    if runtime().is_none() || real_model_dir(INT8).is_none() {
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
