//! Compression of answers larger than 1 KiB (design §1.2), with
//! tower-http: gzip or brotli, as the client's `Accept-Encoding` prefers;
//! an answer to a client that does not ask is sent as it is.

use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::SizeAbove;

/// Answers of at most this many bytes are sent as they are: compressing
/// them saves too little to pay for the CPU.
pub const MIN_COMPRESSED: u64 = 1024;

/// The layer: gzip and br (brotli at tower-http's quality 4, nginx's
/// on-the-fly default), only above [`MIN_COMPRESSED`] bytes.
pub fn layer() -> CompressionLayer<SizeAbove> {
    CompressionLayer::new()
        .gzip(true)
        .br(true)
        .no_deflate()
        .no_zstd()
        .compress_when(SizeAbove::new(MIN_COMPRESSED + 1))
}
