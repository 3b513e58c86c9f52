/** Malware scanning (docs/scanning.md): the scanner contract, clamd over INSTREAM, the scan policy. */
export type { OpenSource, ScanFailure, ScanVerdict, Scanner } from './types.js';
export { ClamdScanner, type ClamdScannerOptions } from './clamd-scanner.js';
export { parseClamdReply } from './clamd-reply.js';
export { SignatureScanner, hdbLine, type FileSignature, type SignatureScannerOptions } from './signature-scanner.js';
export { planScan, type OversizeRule, type ScanPlan, type ScanPolicy, type UnavailableRule } from './policy.js';
export { ScanSlots } from './scan-slots.js';
