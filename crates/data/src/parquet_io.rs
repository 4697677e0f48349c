//! Parquet files written atomically with columns encoded in parallel, and read with
//! row groups decoded in parallel.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::Compression;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::ChunkReader;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows per row group: small enough that a million rows give the cores several
/// groups to decode in parallel, large enough to compress well.
pub(crate) const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Writes `columns` (matching `schema`) to `path` atomically (temporary file in the same
/// folder, fsync, rename) with snappy compression and `kv` in the footer. Row groups
/// and columns are encoded in parallel.
pub(crate) fn write_parquet_atomic(
    path: &Path,
    schema: &SchemaRef,
    columns: &[ArrayRef],
    kv: &[(String, String)],
) -> Result<()> {
    write_parquet_reusing(path, schema, columns, kv, None)
}

/// A Parquet file read into memory, kept so a rewrite can copy its encoded row groups.
#[derive(Debug, Clone)]
pub(crate) struct ParquetSource {
    pub(crate) bytes: Bytes,
    pub(crate) metadata: Arc<ParquetMetaData>,
    pub(crate) schema: SchemaRef,
}

/// Like [`write_parquet_atomic`], but when `source` is a file of the same schema whose
/// leading full row groups (`ROW_GROUP_ROWS` rows each) hold exactly the first rows of
/// `columns`, those row groups are copied as encoded bytes instead of being encoded
/// again. The result is the same table in the same row-group layout; an incremental
/// refresh then encodes only the last, partial row group and the new rows.
pub(crate) fn write_parquet_reusing(
    path: &Path,
    schema: &SchemaRef,
    columns: &[ArrayRef],
    kv: &[(String, String)],
    source: Option<&ParquetSource>,
) -> Result<()> {
    recops_core::ensure_parent(path)?;
    let tmp = recops_core::temp_path_for(path);
    let result = write_parquet_to(&tmp, schema, columns, kv, source);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    recops_core::commit_temp(&tmp, path)?;
    Ok(())
}

fn write_parquet_to(
    tmp: &Path,
    schema: &SchemaRef,
    columns: &[ArrayRef],
    kv: &[(String, String)],
    source: Option<&ParquetSource>,
) -> Result<()> {
    let perr = |e| Error::parquet(tmp, e);
    let rows = columns.first().map_or(0, |c| c.len());
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(
            kv.iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .collect(),
        ));
    // Free text (comments) and timestamps are mostly unique: a dictionary costs a hash
    // per value and is abandoned anyway. Min/max statistics of text help no reader.
    for field in schema.fields() {
        let col = ColumnPath::from(field.name().as_str());
        match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 => {
                builder = builder
                    .set_column_dictionary_enabled(col.clone(), false)
                    .set_column_statistics_enabled(col, EnabledStatistics::None);
            }
            DataType::Timestamp(_, _) => {
                builder = builder.set_column_dictionary_enabled(col, false);
            }
            _ => {}
        }
    }
    let mut props = builder.build();
    add_encoded_arrow_schema_to_metadata(schema, &mut props);
    let props = Arc::new(props);
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(schema)
        .map_err(perr)?;

    let file = File::create(tmp).map_err(|e| Error::io("cannot create", tmp, e))?;
    let mut writer = SerializedFileWriter::new(
        BufWriter::with_capacity(1 << 20, &file),
        parquet_schema.root_schema_ptr(),
        Arc::clone(&props),
    )
    .map_err(perr)?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, Arc::clone(schema));

    // Leading full row groups of the source, copied as they are.
    let reused = source.map_or(0, |src| reusable_groups(src, schema, rows));
    if let Some(src) = source.filter(|_| reused > 0) {
        for rg in &src.metadata.row_groups()[..reused] {
            let mut out = writer.next_row_group().map_err(perr)?;
            for column in rg.columns() {
                let close = ColumnCloseResult {
                    bytes_written: column.compressed_size().max(0) as u64,
                    rows_written: rg.num_rows().max(0) as u64,
                    metadata: column.clone(),
                    bloom_filter: None,
                    column_index: None,
                    offset_index: None,
                };
                out.append_column(&src.bytes, close).map_err(perr)?;
            }
            out.close().map_err(perr)?;
        }
    }
    let start = reused * ROW_GROUP_ROWS;

    // (row group, column) pairs of the rest, encoded in parallel, appended in order.
    let remaining = rows - start;
    let groups: Vec<(usize, usize)> = (0..remaining
        .div_ceil(ROW_GROUP_ROWS)
        .max(usize::from(reused == 0)))
        .map(|g| {
            (
                start + g * ROW_GROUP_ROWS,
                ROW_GROUP_ROWS.min(remaining - g * ROW_GROUP_ROWS),
            )
        })
        .collect();
    let mut jobs = Vec::with_capacity(groups.len() * columns.len());
    for (g, _) in groups.iter().enumerate() {
        let writers = factory.create_column_writers(reused + g).map_err(perr)?;
        if writers.len() != columns.len() {
            return Err(Error::invalid(
                "parquet schema",
                tmp,
                "nested columns are not supported",
            ));
        }
        for (c, w) in writers.into_iter().enumerate() {
            jobs.push((g, c, w));
        }
    }
    let chunks: Vec<(usize, ArrowColumnChunk)> = jobs
        .into_par_iter()
        .map(|(g, c, mut w)| {
            let (offset, len) = groups[g];
            let array = columns[c].slice(offset, len);
            for leaf in compute_leaves(schema.field(c), &array)? {
                w.write(&leaf)?;
            }
            Ok((g, w.close()?))
        })
        .collect::<parquet::errors::Result<_>>()
        .map_err(perr)?;
    let mut chunks = chunks.into_iter().peekable();
    for g in 0..groups.len() {
        let mut rg = writer.next_row_group().map_err(perr)?;
        while let Some((_, chunk)) = chunks.next_if(|(cg, _)| *cg == g) {
            chunk.append_to_row_group(&mut rg).map_err(perr)?;
        }
        rg.close().map_err(perr)?;
    }
    let mut out = writer.into_inner().map_err(perr)?;
    out.flush().map_err(|e| Error::io("cannot write", tmp, e))?;
    drop(out);
    file.sync_all()
        .map_err(|e| Error::io("cannot sync", tmp, e))?;
    Ok(())
}

/// How many leading row groups of `src` can be copied into a file of `rows` rows of
/// `schema`: same Arrow schema, full groups only (the caller guarantees those rows are
/// unchanged and first).
fn reusable_groups(src: &ParquetSource, schema: &SchemaRef, rows: usize) -> usize {
    if src.schema.fields() != schema.fields() {
        return 0;
    }
    let full = src
        .metadata
        .row_groups()
        .iter()
        .take_while(|rg| {
            rg.num_rows() == ROW_GROUP_ROWS as i64 && rg.columns().len() == schema.fields().len()
        })
        .count();
    full.min(rows / ROW_GROUP_ROWS)
}

/// A Parquet file read into memory.
pub(crate) struct ParquetContent {
    /// The record batches, one or more per row group, in file order.
    pub(crate) batches: Vec<RecordBatch>,
    /// The (projected) Arrow schema.
    pub(crate) schema: SchemaRef,
    /// Footer key-value metadata.
    pub(crate) kv: HashMap<String, String>,
    /// Total rows.
    pub(crate) rows: usize,
    /// The file itself (bytes, metadata, full Arrow schema).
    pub(crate) source: ParquetSource,
}

/// Reads the footer of a Parquet file: its Arrow schema, key-value metadata and rows.
pub(crate) fn read_parquet_footer(
    path: &Path,
) -> Result<(SchemaRef, HashMap<String, String>, usize)> {
    let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| Error::parquet(path, e))?;
    let kv = footer_kv(&meta);
    let rows = usize::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(0);
    Ok((Arc::clone(meta.schema()), kv, rows))
}

/// Reads a whole Parquet file, keeping only the top-level columns that `keep` accepts
/// (by name), decoding row groups in parallel.
pub(crate) fn read_parquet(path: &Path, keep: &dyn Fn(&str) -> bool) -> Result<ParquetContent> {
    let perr = |e| Error::parquet(path, e);
    let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let footer = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(perr)?;
    let all_kept = footer.schema().fields().iter().all(|f| keep(f.name()));
    if all_kept {
        // The whole file is needed (and kept, for row-group reuse by the next write).
        let data = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
        return read_parquet_from(path, Bytes::from(data), keep);
    }
    // A projection: read only the column chunks asked for, straight from the file,
    // with a file of its own per thread (clones would share one read position).
    let batches = read_row_groups(&footer, keep, || {
        File::open(path).map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    })
    .map_err(perr)?;
    finish_content(path, footer, batches, Bytes::new(), keep)
}

fn read_parquet_from(
    path: &Path,
    bytes: Bytes,
    keep: &dyn Fn(&str) -> bool,
) -> Result<ParquetContent> {
    let perr = |e| Error::parquet(path, e);
    let meta = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).map_err(perr)?;
    let batches = read_row_groups(&meta, keep, || Ok(bytes.clone())).map_err(perr)?;
    finish_content(path, meta, batches, bytes, keep)
}

/// Decodes the row groups of a file in parallel, in file order, keeping the top-level
/// columns that `keep` accepts; `input` gives each row group its own reader.
fn read_row_groups<T: ChunkReader + 'static>(
    meta: &ArrowReaderMetadata,
    keep: &dyn Fn(&str) -> bool,
    input: impl Fn() -> parquet::errors::Result<T> + Sync,
) -> parquet::errors::Result<Vec<RecordBatch>> {
    let roots: Vec<usize> = meta
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| keep(f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(meta.parquet_schema(), roots);
    let per_group: Vec<Vec<RecordBatch>> = (0..meta.metadata().num_row_groups())
        .into_par_iter()
        .map(|g| {
            ParquetRecordBatchReaderBuilder::new_with_metadata(input()?, meta.clone())
                .with_row_groups(vec![g])
                .with_projection(mask.clone())
                .with_batch_size(ROW_GROUP_ROWS)
                .build()?
                .map(|b| b.map_err(parquet::errors::ParquetError::from))
                .collect()
        })
        .collect::<parquet::errors::Result<_>>()?;
    Ok(per_group.into_iter().flatten().collect())
}

fn finish_content(
    _path: &Path,
    meta: ArrowReaderMetadata,
    batches: Vec<RecordBatch>,
    bytes: Bytes,
    keep: &dyn Fn(&str) -> bool,
) -> Result<ParquetContent> {
    let kv = footer_kv(&meta);
    let rows = usize::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(0);
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => {
            let fields: Vec<_> = meta
                .schema()
                .fields()
                .iter()
                .filter(|f| keep(f.name()))
                .cloned()
                .collect();
            Arc::new(arrow_schema::Schema::new(fields))
        }
    };
    let source = ParquetSource {
        bytes,
        metadata: Arc::clone(meta.metadata()),
        schema: Arc::clone(meta.schema()),
    };
    Ok(ParquetContent {
        batches,
        schema,
        kv,
        rows,
        source,
    })
}

fn footer_kv(meta: &ArrowReaderMetadata) -> HashMap<String, String> {
    meta.metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kvs| {
            kvs.iter()
                .filter_map(|kv| kv.value.as_ref().map(|v| (kv.key.clone(), v.clone())))
                .collect()
        })
        .unwrap_or_default()
}
