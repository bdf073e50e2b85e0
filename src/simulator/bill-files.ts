/**
 * GBK text for the simulator's Alipay side (bills and form bodies in GBK). The bill archives
 * themselves are written by the service's bill writers (yazl zips, iconv-lite GBK), in
 * src/channels/alipay/alipay-bill-writer.ts.
 */
import iconv from "iconv-lite";

/** Encodes text as GBK; characters GBK lacks become `?`. */
export function encodeGbk(text: string): Buffer {
  return iconv.encode(text, "gbk");
}
