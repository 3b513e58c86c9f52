/**
 * Short-lived presigned GET URLs of published files on S3 (`[storage.s3] presigned_downloads`):
 * the download answers with a redirect and the client fetches the bytes from S3 itself. The URL
 * carries the type and disposition this server would have sent (S3's response-content-type and
 * response-content-disposition overrides); S3 cannot add the CSP and nosniff headers, which is why
 * the redirect is an option and off by default.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { S3_LAYOUT } from './s3-client.js';

export interface PresignedDownload {
  readonly contentType: string;
  readonly disposition?: string | undefined;
}

export class S3DownloadSigner {
  constructor(
    private readonly o: { readonly client: S3Client; readonly bucket: string; readonly keyPrefix: string; readonly ttlSeconds: number },
  ) {}

  /** A GET URL of the published file at `path`, valid for the configured time. */
  url(path: string, served: PresignedDownload): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.o.bucket,
      Key: `${this.o.keyPrefix}${S3_LAYOUT.files}${path}`,
      ResponseContentType: served.contentType,
      ...(served.disposition && { ResponseContentDisposition: served.disposition }),
    });
    return getSignedUrl(this.o.client, command, { expiresIn: this.o.ttlSeconds });
  }
}
