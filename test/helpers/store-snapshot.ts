/** What is in a store, file by file, so a test can say a failed pull left nothing behind. */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Every file and directory under `root` (relative paths, sorted) with index.json's content; empty when `root` does not exist. */
export async function snapshotStore(root: string): Promise<{ files: string[]; index: string }> {
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      files.push(`${relative(root, path)}${entry.isDirectory() ? '/' : ''}`);
      if (entry.isDirectory()) await walk(path);
    }
  };
  try {
    await stat(root);
  } catch {
    return { files: [], index: '' };
  }
  await walk(root);
  return { files: files.sort(), index: await readFile(join(root, 'index.json'), 'utf8').catch(() => '') };
}
