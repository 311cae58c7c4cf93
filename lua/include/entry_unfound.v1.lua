-- entry_unfound v1 (an include, not a script; after job.v1): the mark of a job whose queue entry an
-- update did not find. An update that takes a job off 'queued' and does not find its entry near the
-- head of a longer queue marks the job (entry_unfound '1'): the entry may wait deeper, or a consumer
-- of the legacy service's kind popped it. A requeue of a marked job then looks through the whole
-- queue before it pushes an entry, so no job ever waits twice (or waits while claimed); a claim that
-- drops that entry, and a delete, clear the mark with the rest.

local ENTRY_UNFOUND = 'entry_unfound'

local function entryUnfound(job)
  return redis.call('HGET', job.source, ENTRY_UNFOUND) == '1'
end

local function clearEntryUnfoundRefused(job)
  return (job.legacyWritten and refused('HDEL', job.legacyKey, ENTRY_UNFOUND))
    or (writeNew and refused('HDEL', job.newKey, ENTRY_UNFOUND))
end

local function clearEntryUnfound(job)
  if job.legacyWritten then redis.call('HDEL', job.legacyKey, ENTRY_UNFOUND) end
  if writeNew then redis.call('HDEL', job.newKey, ENTRY_UNFOUND) end
end
