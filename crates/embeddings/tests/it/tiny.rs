//! The Encoder on the tiny fixture model: shapes, pooling with padding, normalisation,
//! truncation, Unicode normalisation, pad ids, and bad model files.

use recops_embeddings::{EmbedOptions, Encoder, Error, ModelSpec};

use crate::support::{assert_close, fixtures, runtime, tiny_encoder, tiny_folder, tiny_spec};

const SHORT: &str = "Sữa rửa mặt";
const LONGER: &str = "Kem dưỡng ẩm cho da nhạy cảm, làm sạch";

#[test]
fn shapes_and_unit_norm() {
    let Some(rt) = runtime() else { return };
    let (_dir, mut enc) = tiny_encoder(rt);
    assert_eq!(enc.dim(), 16);
    assert!(enc.uses_token_type_ids());
    let out = enc.embed_batch(&[SHORT, LONGER, ""]).unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out.dim, 16);
    assert_eq!(out.vectors.len(), 3 * 16);
    for i in 0..3 {
        let norm: f32 = out.row(i).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "row {i} has norm {norm}");
    }
    assert!(
        crate::support::cosine(out.row(0), out.row(1)) < 0.9999,
        "different texts must give different vectors"
    );
}

#[test]
fn a_text_alone_equals_the_same_text_in_a_padded_batch() {
    let Some(rt) = runtime() else { return };
    let (_dir, mut enc) = tiny_encoder(rt);
    let alone = enc.embed_batch(&[SHORT]).unwrap();
    // SHORT is padded to LONGER's length in this batch.
    let batch = enc.embed_batch(&[LONGER, SHORT, "da"]).unwrap();
    assert_close(alone.row(0), batch.row(1), 1e-5);
    // Length sorting and small batches give the same vectors, in the callers' order.
    let sorted = enc
        .embed(
            &[LONGER, SHORT, "da"],
            &EmbedOptions {
                batch_size: 2,
                sort_by_length: true,
                max_batch_tokens: 512,
            },
            &mut |_| {},
        )
        .unwrap();
    for i in 0..3 {
        assert_close(batch.row(i), sorted.row(i), 1e-5);
    }
}

#[test]
fn padding_really_is_masked() {
    // The same ids with padding unmasked would change the vector: proves the mask is
    // what makes the previous test pass, not the model ignoring extra positions.
    let Some(rt) = runtime() else { return };
    let dir = tiny_folder();
    let mut spec = tiny_spec(dir.path(), rt);
    spec.prefix = String::new();
    let mut enc = Encoder::open(spec).unwrap();
    let alone = enc.embed_batch(&["da"]).unwrap();
    let padded_text = enc.embed_batch(&["da <pad> <pad> <pad>"]).unwrap();
    assert!(
        crate::support::cosine(alone.row(0), padded_text.row(0)) < 0.999,
        "pad tokens inside the attention mask must change the vector"
    );
}

#[test]
fn long_texts_are_truncated_to_the_maximum_length() {
    let Some(rt) = runtime() else { return };
    let (_dir, mut enc) = tiny_encoder(rt); // 16 tokens, the model has 24 positions
    let base = "sữa rửa mặt kem dưỡng ẩm da cho nhạy cảm máy khoan pin son môi mềm mịn";
    let a = format!("{base} làm sạch da");
    let b = format!("{base} máy khoan pin");
    assert!(enc.count_tokens(&a).unwrap() > 24);
    let out = enc.embed_batch(&[a.as_str(), b.as_str()]).unwrap();
    assert_eq!(out.truncated, 2);
    assert_eq!(out.tokens, 32);
    // The texts differ only after the 16th token: truncated, they are the same.
    assert_close(out.row(0), out.row(1), 1e-6);
    let short = enc.embed_batch(&[SHORT]).unwrap();
    assert_eq!(short.truncated, 0);
}

#[test]
fn a_maximum_beyond_the_model_fails_clearly_instead_of_crashing() {
    let Some(rt) = runtime() else { return };
    let dir = tiny_folder();
    let mut spec = tiny_spec(dir.path(), rt);
    spec.max_length = 64; // the tiny model has 24 positions
    let mut enc = Encoder::open(spec).unwrap();
    let long = "sữa rửa mặt kem dưỡng ẩm da cho nhạy cảm ".repeat(4);
    let err = enc.embed_batch(&[long.as_str()]).unwrap_err();
    assert!(matches!(err, Error::Inference { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("model.onnx"), "{msg}");
    assert!(msg.contains("max_length_tokens"), "{msg}");
}

#[test]
fn nfd_and_nfc_texts_give_the_same_vector() {
    let Some(rt) = runtime() else { return };
    let (_dir, mut enc) = tiny_encoder(rt);
    let nfc = "Sữa rửa mặt dịu nhẹ cho da nhạy cảm";
    // The same text with every accent as a combining mark (Unicode NFD).
    let nfd = "Su\u{31b}\u{303}a ru\u{31b}\u{309}a ma\u{306}\u{323}t di\u{323}u nhe\u{323} cho da nha\u{323}y ca\u{309}m";
    assert_ne!(nfc, nfd);
    let out = enc.embed_batch(&[nfc, nfd]).unwrap();
    assert_close(out.row(0), out.row(1), 1e-6);
}

#[test]
fn models_without_token_type_ids_work() {
    let Some(rt) = runtime() else { return };
    let dir = tiny_folder();
    std::fs::copy(
        fixtures().join("tiny_no_token_types.onnx"),
        dir.path().join("model.onnx"),
    )
    .unwrap();
    let mut enc = Encoder::open(tiny_spec(dir.path(), rt)).unwrap();
    assert!(!enc.uses_token_type_ids());
    let alone = enc.embed_batch(&[SHORT]).unwrap();
    let batch = enc.embed_batch(&[LONGER, SHORT]).unwrap();
    assert_close(alone.row(0), batch.row(1), 1e-5);
}

#[test]
fn the_pad_id_comes_from_tokenizer_json() {
    let Some(rt) = runtime() else { return };
    let (_dir, enc) = tiny_encoder(rt.clone());
    assert_eq!(enc.pad_id(), 1);

    // Another pad id in the padding section is used as is.
    let dir = tiny_folder();
    let path = dir.path().join("tokenizer.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["padding"]["pad_id"] = 4.into();
    std::fs::write(&path, json.to_string()).unwrap();
    let mut enc = Encoder::open(tiny_spec(dir.path(), rt.clone())).unwrap();
    assert_eq!(enc.pad_id(), 4);
    let alone = enc.embed_batch(&[SHORT]).unwrap();
    let batch = enc.embed_batch(&[LONGER, SHORT]).unwrap();
    assert_close(alone.row(0), batch.row(1), 1e-5);

    // Without a padding section, the <pad> token's id.
    json["padding"] = serde_json::Value::Null;
    std::fs::write(&path, json.to_string()).unwrap();
    let enc = Encoder::open(tiny_spec(dir.path(), rt.clone())).unwrap();
    assert_eq!(enc.pad_id(), 1);

    // Neither: a clear error naming the file.
    let vocab = json["model"]["vocab"].as_array_mut().unwrap();
    vocab[1][0] = "<nopad>".into();
    json["added_tokens"][1]["content"] = "<nopad>".into();
    std::fs::write(&path, json.to_string()).unwrap();
    let err = Encoder::open(tiny_spec(dir.path(), rt))
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    assert!(err.contains("no padding token"), "{err}");
}

#[test]
fn a_file_that_is_not_onnx_is_refused_naming_it() {
    let Some(rt) = runtime() else { return };
    let dir = tiny_folder();
    std::fs::write(dir.path().join("model.onnx"), "<html>not a model</html>").unwrap();
    let err = Encoder::open(tiny_spec(dir.path(), rt)).unwrap_err();
    assert!(matches!(err, Error::InvalidModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("invalid model "), "{msg}");
    assert!(msg.contains("model.onnx"), "{msg}");
}

#[test]
fn a_model_with_unexpected_inputs_is_refused_listing_them() {
    let Some(rt) = runtime() else { return };
    let dir = tiny_folder();
    std::fs::copy(
        fixtures().join("wrong_inputs.onnx"),
        dir.path().join("model.onnx"),
    )
    .unwrap();
    let err = Encoder::open(tiny_spec(dir.path(), rt)).unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedModelSignature { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("inputs [pixel_values]"), "{msg}");
    assert!(msg.contains("outputs [logits]"), "{msg}");
    assert!(msg.contains("no input input_ids"), "{msg}");
}

#[test]
fn a_tokenizer_that_does_not_load_is_refused_naming_it() {
    let Some(rt) = runtime() else { return };
    let dir = tiny_folder();
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": 42}").unwrap();
    let err = Encoder::open(tiny_spec(dir.path(), rt)).unwrap_err();
    assert!(matches!(err, Error::Tokenizer { .. }), "{err}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn files_that_differ_from_model_json_are_refused() {
    let Some(rt) = runtime() else { return };
    let dir = tiny_folder();
    let model_sha = recops_embeddings::sha256_file(&dir.path().join("model.onnx")).unwrap();
    let desc = serde_json::json!({
        "name": "tiny-bert",
        "prefix": "passage: ",
        "max_length": 24,
        "files": {
            "model.onnx": {"sha256": model_sha},
            "tokenizer.json": {"sha256": "0".repeat(64)},
        }
    });
    std::fs::write(dir.path().join("model.json"), desc.to_string()).unwrap();
    let spec = ModelSpec::from_dir(dir.path(), rt).unwrap();
    assert_eq!(spec.name, "tiny-bert");
    assert_eq!(spec.max_length, 24);
    let err = Encoder::open(spec).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("tokenizer.json has sha256"),
        "{err}"
    );
}

#[test]
fn a_library_that_is_not_onnx_runtime_is_refused() {
    let Some(rt) = runtime() else { return };
    // Loading a second, different library in the same process is refused before any
    // dlopen, so the real runtime stays usable for the other tests.
    let (_dir, _enc) = tiny_encoder(rt);
    let dir = tiny_folder();
    let fake = dir.path().join("libonnxruntime.so.9.9.9");
    std::fs::write(&fake, "not a library").unwrap();
    let err = Encoder::open(tiny_spec(dir.path(), fake)).unwrap_err();
    assert!(matches!(err, Error::RuntimeConflict { .. }), "{err}");
    assert!(err.to_string().contains("libonnxruntime.so.9.9.9"), "{err}");
}
