import { MemoryLocker } from '../../src/storage/index.js';
import { describeLocker } from '../conformance/locker.suite.js';

describeLocker('MemoryLocker', { open: async (ms) => new MemoryLocker(ms) });
