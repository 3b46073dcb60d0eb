# librad from Julia, end to end: fit a RAD flow on the "moons" problem, print
# the held-out log-likelihood, sample, infer labels, save and reload.
#
#     make                                  # builds lib/librad.so
#     julia examples/julia/example.jl
#
# NOT TESTED: no Julia was available where this was written (see
# docs/bindings.md). It mirrors examples/python/example.py, which is run.
#
# Batches are d x n matrices: one point per COLUMN (the memory layout of
# librad's n x d row-major batches).

include(joinpath(@__DIR__, "rad.jl"))
using .Rad
using Printf

function main()
    println("librad ", Rad.version(), " (", Rad.librad, ")")
    problem = "moons"
    train = problem_sample(problem, 10_000; seed=1)     # 2 x 10000
    heldout = problem_sample(problem, 5_000; seed=2)    # 2 x 5000

    # The paper's RAD configuration: 6 layers, H = G = 8 hidden units.
    flow = Flow(:rad, 2; layers=6, hidden=8, gate_hidden=8, seed=3)
    set_column_names!(flow, ["x", "y"])
    # Standardize with the training data's moments (per row = per dimension).
    n = size(train, 2)
    mu = vec(sum(train; dims=2)) ./ n
    sd = sqrt.(vec(sum((train .- mu) .^ 2; dims=2)) ./ n)
    set_standardization!(flow, mu, sd)
    println(flow)

    steps = 3000
    progress(step, train_ll, heldout_ll) = begin
        if step % 1000 == 0 || step == steps
            @printf("  step %5d  train LL %.4f  held-out LL %.4f\n",
                    step, train_ll, heldout_ll)
        end
        false   # true would stop the fit
    end
    fit!(flow, train; steps=steps, batch=500, lr=3e-3, lr_schedule=:cosine,
         seed=4, heldout=heldout, eval_every=500, report_every=500,
         callback=progress)
    ll = sum(Float64.(log_prob(flow, heldout))) / size(heldout, 2)
    @printf("held-out LL %.4f nats (true LL of %s: %.2f)\n",
            ll, problem, true_log_likelihood(problem))

    # Exact sampling, with the latents and labels of each sample.
    x, z, k = Rad.sample(flow, 5; seed=7, return_z=true, return_labels=true)
    println("samples (one per column):")
    show(stdout, "text/plain", x)
    println()

    # Exact inference of the labels of data points (num_labels x n), and
    # the gating probabilities (3 x num_labels x n).
    points = heldout[:, 1:3]
    z, labels, lp = forward(flow, points)
    probs = gate_probs(flow, points)
    for i in 1:size(points, 2)
        conf = sum(maximum(probs[:, :, i]; dims=1)) / size(probs, 2)
        @printf("point (%.3f, %.3f): log p %.3f, labels %s, gate confidence %.2f\n",
                points[1, i], points[2, i], lp[i], join(labels[:, i]), conf)
    end
    back = inverse(flow, z, labels)
    @printf("inverse(forward(x)) max error %.2g\n", maximum(abs.(back .- points)))

    # One mixture component: every label fixed to those of the first point.
    comp, acc = sample_component(flow, labels[:, 1], 100; seed=8,
                                 max_attempts=100_000, return_acceptance=true)
    @printf("component %s: weight about %.4f\n", join(labels[:, 1]), acc)

    # Save and reload.
    mktempdir() do dir
        path = joinpath(dir, "model.radflow")
        save(flow, path)
        again = load_flow(path)
        same = log_prob(again, heldout) == log_prob(flow, heldout)
        println("saved and reloaded ", filesize(path), " bytes: columns ",
                column_names(again), ", identical log-likelihoods: ", same)
        close(again)
        same || error("reloaded flow differs")
    end
    close(flow)
    return nothing
end

try
    main()
catch e
    e isa Rad.RadError || rethrow()
    showerror(stderr, e)
    println(stderr)
    exit(1)
end
