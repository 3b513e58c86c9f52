/**
 * @tus/s3-store names its objects by the bare upload id (`<id>`, `<id>.info`, `<id>.part`) and, on
 * expiry, walks every multipart upload in the bucket. This middleware puts a prefix in front of
 * every key its client sends and takes it off every key it receives, so the store keeps to its
 * own corner of the bucket (listings are limited to the prefix too) without changing its code.
 */
import type { S3Client } from '@aws-sdk/client-s3';

type Keyed = { Key?: string };
interface Input {
  Key?: string;
  Prefix?: string;
  KeyMarker?: string;
  StartAfter?: string;
  Delete?: { Objects?: Keyed[] };
}
interface Output {
  Key?: string;
  NextKeyMarker?: string;
  Uploads?: Keyed[];
  Contents?: Keyed[];
  Deleted?: Keyed[];
  Errors?: Keyed[];
}

export function prefixKeys(client: S3Client, prefix: string): void {
  const strip = (k: string | undefined) => (k !== undefined && k.startsWith(prefix) ? k.slice(prefix.length) : k);
  const stripAll = (items: Keyed[] | undefined) => items?.forEach((i) => (i.Key = strip(i.Key)));
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Input;
      if (input.Key !== undefined) input.Key = prefix + input.Key;
      if (LISTINGS.has(context.commandName ?? '')) input.Prefix = prefix + (input.Prefix ?? '');
      if (input.KeyMarker !== undefined) input.KeyMarker = prefix + input.KeyMarker;
      if (input.StartAfter !== undefined) input.StartAfter = prefix + input.StartAfter;
      input.Delete?.Objects?.forEach((o) => (o.Key = o.Key === undefined ? o.Key : prefix + o.Key));
      const result = await next(args);
      const output = result.output as Output;
      output.Key = strip(output.Key);
      output.NextKeyMarker = strip(output.NextKeyMarker);
      stripAll(output.Uploads);
      stripAll(output.Contents);
      stripAll(output.Deleted);
      stripAll(output.Errors);
      return result;
    },
    { step: 'initialize', name: 'hfsKeyPrefix', override: true },
  );
}

/** Listings see only what is below the prefix, whether or not they ask for a Prefix. */
const LISTINGS = new Set(['ListMultipartUploadsCommand', 'ListObjectsV2Command', 'ListObjectsCommand']);
